"""Encoder effort: latent refinement makes cheaper files that the unchanged decoder reads."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import codec
from codec import api
from codec.encoding import effort, rate_control
from codec.errors import InputError


def _image(height=72, width=100, seed=3):
    """A smooth test picture with some texture (odd size: padding is exercised)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([128 + 90 * np.sin(xx / 9 + c) * np.cos(yy / 13 - c) for c in range(3)], axis=-1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def _rd_cost(image, data, weights):
    """lambda * 255^2 * MSE + bpp of a real file, as the refinement measures it."""
    import torch

    from codec import bitstream

    net = api.resolve_model(str(weights))
    header, _ = bitstream.unpack(data)
    decoded = np.asarray(codec.decode(data, model=str(weights)).convert("RGB"), dtype=np.float64)
    mse = np.mean((decoded - image) ** 2) / 255**2
    lmbda = float(net.lmbda(torch.tensor([header.quality])))
    return lmbda * 255**2 * mse + 8 * len(data) / (image.shape[0] * image.shape[1])


def test_refinement_lowers_the_rd_cost_and_decodes(tiny_weights):
    """Effort 4: its cheap steps, then full ones. (With the untrained tiny weights, effort 2's
    cheap steps alone find no rounded latents better than their start; the cheap steps are
    tested with a schedule of their own below.)"""
    image = _image()
    plain = codec.encode(image, model=str(tiny_weights), quality=3)
    refined = codec.encode(image, model=str(tiny_weights), quality=3, effort=4)
    assert refined != plain
    assert _rd_cost(image, refined, tiny_weights) < _rd_cost(image, plain, tiny_weights)
    decoded = codec.decode(refined, model=str(tiny_weights))
    assert decoded.size == (image.shape[1], image.shape[0])


def test_large_images_are_refined_in_tiles_alike_on_any_thread_count(tiny_weights, monkeypatch):
    """Above WHOLE_AREA latents the refinement runs tile by tile (here 3 x 4 tiles of 8 latents
    with a halo of 4), on the band pool: cheaper files than effort 0, the same bytes with one
    thread or two, and the tiles really refined on the pool's threads."""
    import threading

    from codec.encoding import refine

    monkeypatch.setattr(refine, "WHOLE_AREA", 0)
    monkeypatch.setattr(refine, "TILE", 8)
    monkeypatch.setattr(refine, "TILE_HALO", 4)
    shapes, names = [], set()
    original = refine.refine_latents

    def recording(model, x, y, *args, **kwargs):
        shapes.append(tuple(y.shape[-2:]))
        names.add(threading.current_thread().name)
        return original(model, x, y, *args, **kwargs)

    monkeypatch.setattr(refine, "refine_latents", recording)
    image = _image(height=190, width=250, seed=11)  # 24 x 32 latents after padding
    plain = codec.encode(image, model=str(tiny_weights), quality=3)
    one = codec.encode(image, model=str(tiny_weights), quality=3, effort=2, threads=1)
    assert len(shapes) == 12 and max(shapes) == (16, 16) and names == {threading.current_thread().name}
    names.clear()
    assert codec.encode(image, model=str(tiny_weights), quality=3, effort=2, threads=2) == one
    assert names and all(name.startswith("codec-band") for name in names)
    assert _rd_cost(image, one, tiny_weights) < _rd_cost(image, plain, tiny_weights)


def test_refinement_is_deterministic(tiny_weights):
    image = _image(seed=5)
    first = codec.encode(image, model=str(tiny_weights), quality=2.5, effort=1)
    assert codec.encode(image, model=str(tiny_weights), quality=2.5, effort=1) == first


def test_effort_zero_is_the_single_pass(tiny_weights):
    image = _image(seed=7)
    assert codec.encode(image, model=str(tiny_weights), quality=4, effort=0) == \
        codec.encode(image, model=str(tiny_weights), quality=4)


@pytest.mark.parametrize("bad", [-1, effort.MAX_EFFORT + 1, 1.5, True, "2"])
def test_bad_effort_is_refused(tiny_weights, bad):
    with pytest.raises(InputError, match="effort"):
        codec.encode(_image(), model=str(tiny_weights), effort=bad)


def test_rate_control_with_effort_meets_a_size_target(tiny_weights):
    image = _image(96, 128, seed=11)
    size = len(codec.encode(image, model=str(tiny_weights), quality=3.5))
    data = codec.encode(image, model=str(tiny_weights), size=size, effort=1)
    assert len(data) <= size


def test_rate_control_adds_at_most_the_refined_encodes(tiny_weights, monkeypatch):
    calls = []
    real = api.encode

    def counting(*args, **kwargs):
        calls.append(kwargs.get("effort", 0))
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "encode", counting)
    target = rate_control.Target("bpp", 1.0)
    rate_control.encode_to_target(_image(), str(tiny_weights), target, effort=1)
    assert sum(1 for e in calls if e == 0) <= rate_control.MAX_ENCODES
    assert sum(1 for e in calls if e == 1) <= rate_control.REFINED_ENCODES


@pytest.mark.parametrize("argv", [
    ["--effort", "-1"], ["--effort", "9"], ["--effort", "x"], ["--bpp", "0"], ["--size", "abc"],
    ["--psnr", "200"], ["--bpp", "0.5", "--size", "10k"],
])
def test_bad_arguments_exit_2_without_output(tmp_path, argv):
    source = tmp_path / "in.png"
    Image.fromarray(_image()).save(source)
    out = tmp_path / "out.bin"
    result = subprocess.run([sys.executable, "-m", "codec", "encode", str(source), str(out), *argv],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("codec encode: error: argument")
    assert not out.exists()


def test_cli_effort(tmp_path, tiny_weights, capsys):
    from codec.cli import main

    source = tmp_path / "in.png"
    Image.fromarray(_image()).save(source)
    assert main(["encode", str(source), str(tmp_path / "a.bin"), "--model", str(tiny_weights), "--effort", "1"]) == 0
    assert (tmp_path / "a.bin").read_bytes() == codec.encode(_image(), model=str(tiny_weights), effort=1)


def _tiny_latents(weights):
    """The model, a 64x96 test image ``[1, 3, H, W]`` and its latents ``y, z`` at quality 3, spread
    4x (an untrained model's latents are small: spread them over several bins)."""
    import torch

    net = api.resolve_model(str(weights))
    x = torch.from_numpy(_image(64, 96)).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y, z = net.analyse(x, 3.0)
    return net, x, 4 * y, 4 * z


def test_dead_zone_start_rounds_like_a_dead_zone_quantiser(tiny_weights):
    import torch

    from codec.encoding.refine import dead_zone_start

    net, x, y, z = _tiny_latents(tiny_weights)
    with torch.no_grad():
        latents = net.build_latent_codec(integer=False)
        dead_zone = latents.relaxed(y, z, lambda r: torch.sign(r) * torch.floor(r.abs() + 0.5 - 0.2))
        plain = latents.relaxed(y, z, torch.round)
        started = latents.relaxed(*dead_zone_start(net, y, z, 0.2), torch.round)
    assert torch.allclose(started["z_hat"], dead_zone["z_hat"], atol=1e-5)
    assert torch.allclose(started["y_hat"], dead_zone["y_hat"], atol=1e-4)
    assert not torch.allclose(plain["y_hat"], dead_zone["y_hat"], atol=1e-4)
    assert dead_zone["bits"].item() < plain["bits"].item()


def test_linearised_distortion_is_the_decoder_near_its_latents(tiny_weights):
    """walloc's cheap stand-in: the same pixels as g_s, and about the same error, at the latents
    it was made at (the wavelet's cross terms are left out), a little off elsewhere."""
    import torch

    net, x, y, _ = _tiny_latents(tiny_weights)
    with torch.no_grad():
        y_hat = torch.round(y)
        x_hat, mse = net.linearised_distortion(y_hat, x)
        assert torch.allclose(x_hat, net.g_s(y_hat), atol=1e-5)
        true = (x_hat - x).pow(2).mean()
        assert abs(mse(y_hat).item() / true.item() - 1) < 0.1
        moved = y_hat + 0.5 * torch.randn_like(y_hat)
        assert abs(mse(moved).item() / (net.g_s(moved) - x).pow(2).mean().item() - 1) < 0.2


def test_cheap_refinement_steps_lower_the_rd_cost(tiny_weights):
    import torch

    from codec.encoding.effort import Schedule
    from codec.encoding.refine import _quantised_cost, refine_latents

    net, x, y, z = _tiny_latents(tiny_weights)
    schedule = Schedule(steps=30, lr=2e-2, cheap_steps=20, deadzones=(0.05,))
    refined = refine_latents(net, x, y, z, 3.0, schedule)
    again = refine_latents(net, x, y, z, 3.0, schedule)
    with torch.no_grad():
        before = _quantised_cost(net, x, y, z, 3.0, 64, 96, torch.round)[0].item()
        after = _quantised_cost(net, x, *refined, 3.0, 64, 96, torch.round)[0].item()
    assert after < before
    assert all(torch.equal(a, b) for a, b in zip(refined, again))


def test_linearised_stand_in_has_the_true_gradient_where_it_is_made(tiny_weights):
    import torch

    from codec.encoding.refine import _linearised_at, _pixel_error

    net, x, y, _ = _tiny_latents(tiny_weights)
    y_hat = torch.round(y)
    error, distortion = _linearised_at(net, x, y_hat, 60, 90)  # a cropped image: the padding does not count
    point = y_hat.clone().requires_grad_(True)
    true = _pixel_error(net.g_s(point), x, 60, 90)
    (true_gradient,) = torch.autograd.grad(true.sum(), point)
    (stand_in_gradient,) = torch.autograd.grad(distortion(point).sum(), point)
    assert torch.allclose(error, true.detach(), rtol=1e-5)
    assert torch.allclose(stand_in_gradient, true_gradient, rtol=1e-4, atol=1e-9)


def test_refinements_adam_is_torchs_bit_for_bit():
    import torch

    from codec.encoding.refine import Adam

    generator = torch.Generator().manual_seed(3)
    ours = [torch.randn(2, 5, 7, generator=generator), torch.randn(3, 4, generator=generator)]
    theirs = [p.clone() for p in ours]
    for p in ours + theirs:
        p.requires_grad_(True)
    adam, reference = Adam(ours, lr=5e-3), torch.optim.Adam(theirs, lr=5e-3)
    for step in range(30):
        grads = [torch.randn(p.shape, generator=generator) * 10 ** (step % 4 - 2) for p in ours]
        for optimiser, params in ((adam, ours), (reference, theirs)):
            optimiser.zero_grad()
            for p, g in zip(params, grads):
                if not (step == 5 and p.dim() == 2):  # a step without a gradient for one tensor
                    p.grad = g.clone()
            optimiser.step()
        for a, b in zip(ours, theirs):
            assert torch.equal(a, b)
