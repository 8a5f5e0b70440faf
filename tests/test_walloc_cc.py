"""walloc-cc: walloc's transforms with a context-conditional entropy model (channel slices, checkerboard;
exact integer parameters)."""
import numpy as np
import pytest
import torch

import codec
from codec import api, bitstream
from codec.latent_codecs.integer_parameters import derive_channel_conditional_parameters
from codec.models.weights import build_model, save_weights

from conftest import TINY_WALLOC

TINY_CC = dict(TINY_WALLOC, slices=4, slice_hidden=8, slice_kernel=3)
#: A checkerboard context over 2 channel slices: groups y0a, y0b, y1a, y1b.
TINY_CB = dict(TINY_WALLOC, slices=2, slice_hidden=8, slice_kernel=3, checkerboard=True)
CONFIGS = {"slices": TINY_CC, "checkerboard": TINY_CB}
STREAMS = {"slices": ["z", "y0", "y1", "y2", "y3"], "checkerboard": ["z", "y0a", "y0b", "y1a", "y1b"]}


def _image(height=96, width=128, seed=11):
    """A smooth picture with texture, [1, 3, H, W] in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([128 + 90 * np.sin(xx / 7 + c) * np.cos(yy / 11 - c) for c in range(3)], axis=0)
    pixels = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).round() / 255
    return torch.from_numpy(pixels).float()[None]


def _cc_from(walloc_weights, perturb: float = 0.0, seed: int = 0, config=TINY_CC):
    """A walloc-cc over the tiny walloc's weights; slice transforms zero, or random with ``perturb``."""
    from safetensors.torch import load_file

    model = build_model("walloc-cc", config)
    missing, unexpected = model.load_state_dict(load_file(walloc_weights), strict=False)
    assert not unexpected and all(k.startswith("slice_transforms.") for k in missing)
    if perturb:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.slice_transforms.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * perturb)
    return model.eval()


@pytest.fixture(scope="module", params=list(CONFIGS))
def cc_weights(request, tiny_weights, tmp_path_factory):
    """(A walloc-cc weights file whose transforms make real corrections, its kind)."""
    model = _cc_from(tiny_weights, perturb=0.2, config=CONFIGS[request.param])
    path = tmp_path_factory.mktemp("cc") / "tiny-cc.safetensors"
    save_weights(model, path, architecture="walloc-cc", config=CONFIGS[request.param])
    return path, request.param


def test_checkerboard_halves():
    from codec.latent_codecs.channel_conditional import checkerboard_merge, checkerboard_split

    t = torch.arange(2 * 3 * 4 * 6).reshape(2, 3, 4, 6)
    anchors, rest = checkerboard_split(t)
    assert anchors.shape == rest.shape == (2, 3, 4, 3)
    rows, cols = torch.meshgrid(torch.arange(4), torch.arange(6), indexing="ij")
    assert torch.equal(anchors[0, 0].flatten(), t[0, 0][(rows + cols) % 2 == 0])
    assert torch.equal(rest[0, 0].flatten(), t[0, 0][(rows + cols) % 2 == 1])
    assert torch.equal(checkerboard_merge(anchors, rest), t)


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_zero_slice_transforms_code_as_walloc(tiny_weights, kind):
    """Fresh slice transforms predict no correction: the same likelihoods and decoded latents as
    walloc's hyperprior (the starting point of a fine-tune from walloc weights)."""
    from codec.models.weights import load_weights

    walloc, cc = load_weights(tiny_weights).eval(), _cc_from(tiny_weights, config=CONFIGS[kind])
    x, quality = _image(), torch.tensor([3.0])
    with torch.no_grad():
        outs = [m.build_latent_codec(integer=False)(m.g_a(x) * m.gains.gain(quality)) for m in (walloc, cc)]
    bits = [sum(-l.log2().sum() for l in out["likelihoods"].values()) for out in outs]
    assert float(bits[1]) == pytest.approx(float(bits[0]), rel=1e-5)
    for integer in (False, True):
        y, z = walloc.analyse(x, 3.0)
        hats = [m.build_latent_codec(integer=integer).compress(y, z)["y_hat"] for m in (walloc, cc)]
        assert torch.equal(hats[0], hats[1])


@pytest.mark.parametrize("kind", list(CONFIGS))
@pytest.mark.parametrize("integer", [True, False])
def test_decoded_latents_are_the_encoders(tiny_weights, integer, kind):
    """Each group's parameters depend on the groups decoded before it: the decoder must rebuild
    the encoder's y_hat exactly (integer parameters: bit for bit by construction)."""
    cc = _cc_from(tiny_weights, perturb=0.2, config=CONFIGS[kind])
    y, z = cc.analyse(_image(), 4.0)
    codec_ = cc.build_latent_codec(integer=integer)
    out = codec_.compress(y, z)
    assert list(out["strings"]) == STREAMS[kind]
    decoded = codec_.decompress(out["strings"], out["shapes"])["y_hat"]
    assert torch.equal(decoded, out["y_hat"])


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_slice_transforms_change_the_parameters(tiny_weights, kind):
    """The corrections are used: other transform weights, other table indexes."""
    cc, plain = _cc_from(tiny_weights, perturb=0.2, config=CONFIGS[kind]), _cc_from(tiny_weights, config=CONFIGS[kind])
    y, z = cc.analyse(_image(), 4.0)
    streams = [m.build_latent_codec().compress(y, z)["strings"][STREAMS[kind][-1]] for m in (cc, plain)]
    assert streams[0] != streams[1]


def test_integer_parameters_do_not_depend_on_bands(tiny_weights):
    cc = _cc_from(tiny_weights, perturb=0.2)
    y, z = cc.analyse(_image(height=224, width=96), 2.0)
    params = derive_channel_conditional_parameters(cc.h_s, cc.slice_transforms, cc.entropy_bottleneck,
                                                   cc.gaussian_conditional)
    symbols = cc.entropy_bottleneck.quantize(z, "symbols", cc.entropy_bottleneck._get_medians()).int()
    whole_features = params.features(symbols)
    decoded = [params.fixed_point(torch.round(y[:, :2]).int(), torch.zeros_like(y[:, :2], dtype=torch.int64))]
    whole = params.group_parameters(1, 1, whole_features, decoded)
    params.BAND_OUTPUTS = 2 * y.shape[-1]  # two rows of y per band, far fewer than the image's
    try:
        assert torch.equal(params.features(symbols), whole_features)
        for a, b in zip(params.group_parameters(1, 1, whole_features, decoded), whole):
            assert torch.equal(a, b)
    finally:
        del params.BAND_OUTPUTS


def test_files_roundtrip_through_the_api(cc_weights):
    cc_weights, kind = cc_weights
    rgb = (_image(height=90, width=130)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    data = codec.encode(rgb, model=str(cc_weights), quality=3)
    header, sections = bitstream.unpack(data)
    assert header.model == "tiny-cc" and header.integer_parameters  # the name is the file stem
    assert [s.name for s in sections] == STREAMS[kind]
    decoded = np.asarray(codec.decode(data, model=str(cc_weights)).convert("RGB"))
    assert decoded.shape == rgb.shape
    again = api.decode_to_tensor([data, data], model=str(cc_weights))
    assert torch.equal(again[0], again[1])


def test_refinement_works_for_walloc_cc(cc_weights):
    """Effort levels optimise the context-conditional rate too; the file decodes."""
    cc_weights, _ = cc_weights
    rgb = (_image(height=70, width=100, seed=4)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    plain = codec.encode(rgb, model=str(cc_weights), quality=3)
    refined = codec.encode(rgb, model=str(cc_weights), quality=3, effort=1)
    assert refined != plain
    assert codec.encode(rgb, model=str(cc_weights), quality=3, effort=1) == refined
    assert codec.decode(refined, model=str(cc_weights)).size == (rgb.shape[1], rgb.shape[0])


def test_training_starts_from_walloc_weights_with_frozen_transforms(tiny_weights):
    """walloc weights initialise walloc-cc (its slice transforms are new); frozen modules get no
    optimiser state; a config that differs otherwise is refused."""
    from codec.errors import CodecError
    from codec.training.trainer import make_optimizers, read_init_weights

    config = {"architecture": "walloc-cc", "model": TINY_CC}
    state, step, _ = read_init_weights(str(tiny_weights), config)
    model = build_model("walloc-cc", TINY_CC)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and missing and all(k.startswith("slice_transforms.") for k in missing)
    train = {"lr": 1e-3, "aux_lr": 1e-3, "steps": 10, "frozen": ["encoder", "decoder", "gains"]}
    optimizer, _, _ = make_optimizers(model, train)
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    for name, p in model.named_parameters():
        frozen = name.split(".")[0] in train["frozen"]
        assert (id(p) in optimised) == (not frozen and not name.endswith(".quantiles")), name
    with pytest.raises(CodecError, match="another model or config"):
        read_init_weights(str(tiny_weights), {"architecture": "walloc-cc", "model": dict(TINY_CC, z_channels=4)})
    with pytest.raises(CodecError, match="another model or config"):
        read_init_weights(str(tiny_weights), {"architecture": "hyperprior", "model": {}})


def test_bad_slice_configs_are_refused():
    with pytest.raises(ValueError, match="divide"):
        build_model("walloc-cc", dict(TINY_CC, slices=3))
    with pytest.raises(ValueError, match="odd"):
        build_model("walloc-cc", dict(TINY_CC, slice_kernel=2))
    with pytest.raises(ValueError, match="neighbours"):
        build_model("walloc-cc", dict(TINY_CB, slice_kernel=1))


def test_a_wrong_substream_count_is_refused_before_any_parameter(tiny_weights):
    """As for walloc: a file whose group streams break the split rule fails before the
    parameters of any latent are computed (a header claiming a huge image costs nothing)."""
    cc = _cc_from(tiny_weights, perturb=0.2, config=TINY_CB)
    y, z = cc.analyse(_image(), 3.0)
    codec_ = cc.build_latent_codec()
    out = codec_.compress(y, z)
    strings = dict(out["strings"], y0b=[out["strings"]["y0b"][0] * 2])

    def no_parameters(*_):
        raise AssertionError("parameters computed before the streams were checked")

    codec_.integer.features = no_parameters
    with pytest.raises(ValueError, match="substreams"):
        codec_.decompress(strings, out["shapes"])


def test_a_bad_config_is_one_line_and_no_run(tmp_path):
    import json
    import subprocess
    import sys

    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"architecture": "walloc-cc", "model": dict(TINY_CB, slices=3),
                                  "train": {"batch_size": 1, "crop": 64, "steps": 2, "lr": 1e-3, "aux_lr": 1e-3}}))
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    from PIL import Image
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (72, 80, 3), dtype=np.uint8)).save(data / f"im{i}.png")
    result = subprocess.run([sys.executable, "-m", "codec", "train", "--config", str(config), "--data", str(data),
                             "--out", str(tmp_path / "run")], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == ["codec train: error: bad walloc-cc config: slices must divide "
                                                  "the 8 latent channels, got 3"]
    assert not (tmp_path / "run").exists()


def _rebased(tiny_weights, tmp_path, walloc_config: dict):
    """tools/rebase_walloc_cc.py run on a new random walloc of ``walloc_config`` and a tiny
    walloc-cc: (the walloc's path, the walloc-cc's path, the result's path, the walloc)."""
    import subprocess
    import sys
    from pathlib import Path

    cc_path = tmp_path / "cc.safetensors"
    save_weights(_cc_from(tiny_weights, perturb=0.1), cc_path, architecture="walloc-cc", config=TINY_CC)
    torch.manual_seed(5)
    new = build_model("walloc", walloc_config)
    new_path = tmp_path / "new.safetensors"
    save_weights(new, new_path, architecture="walloc", config=walloc_config)
    out = tmp_path / "rebased.safetensors"
    tool = Path(__file__).resolve().parents[1] / "tools" / "rebase_walloc_cc.py"
    subprocess.run([sys.executable, str(tool), str(new_path), str(cc_path), str(out)], check=True, capture_output=True)
    return new_path, cc_path, out, new


def test_rebase_joins_a_new_walloc_with_the_context(tiny_weights, tmp_path):
    """tools/rebase_walloc_cc.py: walloc's tensors from the new walloc, the context from the walloc-cc."""
    from safetensors.torch import load_file

    new_path, cc_path, out, _ = _rebased(tiny_weights, tmp_path, TINY_WALLOC)
    rebased, walloc_tensors, context = load_file(out), load_file(new_path), load_file(cc_path)
    assert set(rebased) == set(context)
    for key, value in rebased.items():
        source = walloc_tensors if key in walloc_tensors else context
        assert torch.equal(value, source[key]), key
    assert any(k.startswith("slice_transforms.") for k in rebased)
    assert not torch.equal(rebased["encoder.weight"], context["encoder.weight"])


def test_rebase_carries_an_encoder_body(tiny_weights, tmp_path):
    """A walloc with an encoder body rebased under a walloc-cc: the body and its config come
    along, and the result loads (strictly) as a walloc-cc with that body."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file

    body_config = dict(TINY_WALLOC, boundary="symmetric", encoder_channels=8, encoder_blocks=1)
    _, _, out, new = _rebased(tiny_weights, tmp_path, body_config)
    with safe_open(out, "pt") as f:
        config = json.loads(f.metadata()["config"])
    assert config == dict(TINY_CC, **body_config)
    rebased = build_model("walloc-cc", config)
    rebased.load_state_dict(load_file(out))
    assert torch.equal(rebased.encoder_body[0].weight, new.encoder_body[0].weight)
