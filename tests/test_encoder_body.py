"""walloc's optional encoder body (``encoder_channels`` > 0): added to trained linear weights it
changes nothing at first, a run from those weights (``--init``) may add it, its latents are
those of the whole image in any bands and tiles, and it needs symmetric borders."""
import pytest
import torch
from conftest import TINY_WALLOC

from codec.models.weights import build_model, save_weights

BODY = dict(TINY_WALLOC, boundary="symmetric", encoder_channels=12, encoder_blocks=1)


def _with_random_body(config: dict = BODY) -> torch.nn.Module:
    """A tiny walloc whose body (output convolution included) has random weights."""
    torch.manual_seed(0)
    net = build_model("walloc", config).eval()
    for p in net.encoder_body.parameters():
        p.data.normal_(0, 0.1)
    return net


def test_a_new_body_adds_nothing_to_linear_weights(tiny_weights):
    """Linear weights start a run whose config adds a body: the same latents at step 0."""
    from codec.training.trainer import read_init_weights

    config = {"architecture": "walloc", "model": BODY}
    state, _, _ = read_init_weights(str(tiny_weights), config)
    net = build_model("walloc", BODY).eval()
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert {k.split(".")[0] for k in missing} == {"encoder_body"} and not unexpected
    linear = build_model("walloc", dict(TINY_WALLOC, boundary="symmetric")).eval()
    linear.load_state_dict(state)
    x = torch.rand(1, 3, 64, 96)
    with torch.inference_mode():
        assert torch.equal(net.g_a(x), linear.g_a(x))


@pytest.mark.parametrize("module", ["encoder_body", "prior_correction"])
def test_weights_with_an_optional_module_keep_it(tmp_path, module):
    """An optional module's width (the body's, the prior correction's) is part of the config
    once weights have one: another width is refused."""
    from test_prior_correction import CORRECTED, _with_random_correction

    from codec.errors import CodecError
    from codec.training.trainer import read_init_weights

    net, config, width = ((_with_random_body(), BODY, "encoder_channels") if module == "encoder_body" else
                          (_with_random_correction(), CORRECTED, "prior_correction"))
    path = tmp_path / "net.safetensors"
    save_weights(net, path, architecture="walloc", config=config)
    state, _, _ = read_init_weights(str(path), {"architecture": "walloc", "model": config})
    assert f"{module}.0.weight" in state or f"{module}.net.0.weight" in state
    with pytest.raises(CodecError, match="another model or config"):
        read_init_weights(str(path), {"architecture": "walloc", "model": dict(config, **{width: config[width] + 4})})


def test_the_body_widens_the_analysis_halo():
    """Each 3x3 convolution of the body reaches one latent row further."""
    linear = build_model("walloc", dict(TINY_WALLOC, boundary="symmetric"))
    for blocks in (1, 2):
        net = build_model("walloc", dict(BODY, encoder_blocks=blocks))
        assert net.analysis_halo == linear.analysis_halo + 1 + 2 * blocks


@pytest.mark.parametrize("columns", [5, 13, 32])
def test_bands_and_column_tiles_agree_with_the_whole_image(monkeypatch, columns):
    net = _with_random_body()
    monkeypatch.setattr(type(net), "BAND_ROWS", 8)
    monkeypatch.setattr(type(net), "WHOLE_IMAGE_ROWS", 0)
    monkeypatch.setattr(type(net), "TILE_COLUMNS", columns)
    x = torch.rand(1, 3, 8 * 41, 8 * 53)
    with torch.inference_mode():
        whole = net._encode(net.coefficients(x))
        assert whole.shape == (1, TINY_WALLOC["latent_channels"], 41, 53)
        torch.testing.assert_close(net.g_a(x), whole, rtol=0, atol=1e-5)
        # The body counts: without it the latents differ by more than float rounding.
        assert (whole - net.encoder(net.coefficients(x))).abs().max() > 1e-2


def test_tiles_give_the_whole_image_bytes(monkeypatch, tmp_path):
    """Files coded in bands and tiles are those of the whole image (integer parameters)."""
    from test_tiles import assert_tiles_give_the_whole_image_bytes

    calls = assert_tiles_give_the_whole_image_bytes(monkeypatch, tmp_path, _with_random_body(), BODY,
                                                    [(256, 256), "300x520"])
    assert calls.count("compress_in_bands") == 2


def test_periodic_borders_are_refused():
    with pytest.raises(ValueError, match="symmetric"):
        build_model("walloc", dict(BODY, boundary="periodic"))
