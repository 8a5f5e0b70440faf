"""Reconstruction offsets (codec.latent_codecs.reconstruction): the synthesis sees
``means + k + sign(k) * offsets[index, min(|k|, 3) - 1]``, the bitstream and every context
stay those of ``means + k``, the banded decoders give the whole image's pixels, and the table
learns from the distortion."""

import numpy as np
import pytest
import torch
from conftest import TINY_WALLOC, code_in_small_bands
from test_walloc_cc import TINY_CB, _cc_from

from codec.entropy.compressai_models import scale_indexes
from codec.latent_codecs.reconstruction import ReconstructionOffsets, table_indexes
from codec.models.weights import build_model, save_weights


def _random_table(model, seed: int = 0) -> None:
    """Offsets of either sign, as large as a trained table's (up to 0.4)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.reconstruction.offsets.copy_((torch.rand(64, 3, generator=generator) - 0.7) * 0.6)


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, width)[None, :, None]
    return (ramp + rng.normal(0, 40, (height, width, 3))).clip(0, 255).astype(np.uint8)


def test_table_indexes_are_the_coders():
    from compressai.entropy_models import GaussianConditional

    from codec.latent_codecs.gaussian_conditional import scale_table

    conditional = GaussianConditional(None)
    conditional.update_scale_table(scale_table())
    scales = torch.cat([torch.rand(2000) * 300, torch.tensor([0.0, 0.05, 0.11, 0.1100001, 256.0, 1e4])])
    assert torch.equal(table_indexes(scales).int(), scale_indexes(conditional, scales))


def test_offsets_follow_sign_magnitude_and_index():
    offsets = ReconstructionOffsets()
    with torch.no_grad():
        offsets.offsets.copy_(torch.arange(64 * 3, dtype=torch.float32).view(64, 3) / 1000)
    symbols = torch.tensor([0, 1, -1, 2, -2, 3, -7, 5])
    indexes = torch.tensor([5, 5, 5, 9, 9, 63, 0, 70])  # 70: held at the last row
    expected = torch.tensor([0.0, 0.015, -0.015, 0.028, -0.028, 0.191, -0.002, 0.191])
    assert torch.allclose(offsets.of(symbols, indexes), expected)
    assert np.allclose(offsets.of_numpy(symbols.numpy().astype(np.int32), indexes.numpy()), expected.numpy())


def test_the_table_learns_from_the_distortion():
    """In training, the synthesis input carries the offsets and the loss's gradient reaches
    the table; the likelihoods do not depend on it."""
    torch.manual_seed(0)
    model = build_model("walloc", dict(TINY_WALLOC, reconstruction_offsets=True))
    x = torch.rand(2, 3, 64, 64)
    torch.manual_seed(1)  # the likelihoods' noise
    out = model(x, torch.tensor([1.0, 3.0]))
    (out["x_hat"] - x).square().mean().backward()
    assert model.reconstruction.offsets.grad is not None and model.reconstruction.offsets.grad.abs().sum() > 0
    likelihoods = out["likelihoods"]["y"].detach()
    _random_table(model)
    torch.manual_seed(1)
    assert torch.equal(model(x, torch.tensor([1.0, 3.0]))["likelihoods"]["y"].detach(), likelihoods)


@pytest.mark.parametrize("architecture", ["walloc", "walloc-cc"])
def test_offsets_change_the_pixels_not_the_bytes(tiny_weights, tmp_path, architecture):
    """The same weights with and without a table code the same bytes; with a zero table the
    pixels are the old decoder's bit for bit, with a trained one they move, and the decoded
    latents are ``means + k`` plus the table's offsets."""
    from codec import api

    config = dict(TINY_CB if architecture == "walloc-cc" else TINY_WALLOC)
    plain = _cc_from(tiny_weights, perturb=0.2, config=TINY_CB) if architecture == "walloc-cc" else \
        build_model("walloc", config).eval()
    if architecture == "walloc":
        from safetensors.torch import load_file
        plain.load_state_dict(load_file(tiny_weights))
    with_table = build_model(architecture, dict(config, reconstruction_offsets=True)).eval()
    missing, unexpected = with_table.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["reconstruction.offsets"] and not unexpected
    paths = {}
    for name, model, cfg in [("plain", plain, config), ("zero", with_table, dict(config, reconstruction_offsets=True))]:
        paths[name] = tmp_path / f"{name}.safetensors"
        save_weights(model, paths[name], architecture=architecture, config=cfg)
    _random_table(with_table)
    paths["table"] = tmp_path / "table.safetensors"
    save_weights(with_table, paths["table"], architecture=architecture, config=dict(config, reconstruction_offsets=True))
    rgb = _image(96, 128)
    nets = {name: api.resolve_model(str(path)) for name, path in paths.items()}
    files = {name: api.encode(rgb, model=net, quality=3.0) for name, net in nets.items()}
    # Only the weights hash in the header differs: the coded sections are the same.
    from codec import bitstream
    sections = {name: bitstream.unpack(data)[1] for name, data in files.items()}
    assert sections["plain"] == sections["zero"] == sections["table"]
    pixels = {name: np.asarray(api.decode(files[name], model=nets[name])) for name in files}
    assert np.array_equal(pixels["plain"], pixels["zero"])
    assert not np.array_equal(pixels["plain"], pixels["table"])

    net = nets["table"]
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    codec_ = net.build_latent_codec()
    with torch.inference_mode():
        y, _ = net.analyse(x, 3.0)
        coded = codec_.compress(y)
        decoded = codec_.decompress(coded["strings"], coded["shapes"])["y_hat"]
        plain_codec = nets["plain"].build_latent_codec()
        y_plain = plain_codec.decompress(coded["strings"], coded["shapes"])["y_hat"]
    assert torch.equal(decoded, coded["y_hat"])  # the encoder knows what the decoder sees
    moved = (decoded - y_plain).abs()  # the table's values lie in [-0.42, 0.18]
    assert moved.max() > 0 and moved.max() <= 0.42 + 1e-5


@pytest.fixture(params=["walloc", "walloc-cc"])
def banded_with_table(request, tiny_weights, tmp_path, monkeypatch):
    """A symmetric tiny model with a table of offsets, coding files of a few hundred pixels in bands."""
    from codec.latent_codecs.channel_conditional import ChannelConditionalLatentCodec
    from codec.latent_codecs.hyperprior import HyperpriorLatentCodec

    architecture = request.param
    base = TINY_CB if architecture == "walloc-cc" else TINY_WALLOC
    config = dict(base, boundary="symmetric", reconstruction_offsets=True)
    model = build_model(architecture, config).eval()
    source = _cc_from(tiny_weights, perturb=0.2, config=TINY_CB) if architecture == "walloc-cc" else None
    if source is not None:
        model.load_state_dict(source.state_dict(), strict=False)
    else:
        from safetensors.torch import load_file
        model.load_state_dict(load_file(tiny_weights), strict=False)
    _random_table(model, seed=1)
    path = tmp_path / f"{architecture}-table.safetensors"
    save_weights(model, path, architecture=architecture, config=config)
    latent_codec = ChannelConditionalLatentCodec if architecture == "walloc-cc" else HyperpriorLatentCodec
    return str(path), code_in_small_bands(monkeypatch, latent_codec)


def test_banded_decoding_with_offsets_gives_the_whole_image_pixels(banded_with_table):
    from codec import api

    weights, calls = banded_with_table
    rgb = _image(233, 64, seed=2)
    net = api.resolve_model(weights)
    data = api.encode(rgb, model=net, quality=3.0)
    pixels = np.asarray(api.decode(data, model=net))
    assert calls == ["compress_in_bands", "decompress_in_bands"]
    expected = (api.decode_to_tensor([data], model=net)[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(pixels, expected)
