"""walloc-cc in bands of latent rows: the integer entropy parameters (hyper features, context
transforms) of a band, computed from its rows and exact halos, are the whole image's bit for
bit, and a tall image's file and decoded pixels are the whole-image path's."""

import numpy as np
import pytest
import torch
from conftest import TINY_WALLOC
from test_walloc_cc import TINY_CB, TINY_CC, _cc_from

from codec.latent_codecs.channel_conditional import ChannelConditionalLatentCodec
from codec.latent_codecs.integer_parameters import IntegerChannelConditionalParameters

CONFIGS = {"checkerboard": TINY_CB, "slices": TINY_CC}


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as the codec runs: many small integer convolutions, which a second
    thread slows down by minutes on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=list(CONFIGS))
def codec_(request, tiny_weights, monkeypatch):
    """A tiny walloc-cc's integer latent codec whose transforms make real corrections; the
    integer work in small pieces (a few latent rows, column chunks)."""
    monkeypatch.setattr(IntegerChannelConditionalParameters, "BAND_OUTPUTS", 1024)
    return _cc_from(tiny_weights, perturb=0.2, config=CONFIGS[request.param]).build_latent_codec(integer=True)


def _latents(height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, z) of one image of ``height`` x ``width`` latents (multiples of 4, as a file's)."""
    y = torch.randn(1, TINY_WALLOC["latent_channels"], height, width, generator=torch.Generator().manual_seed(seed)) * 6
    return y, y[:, :TINY_WALLOC["z_channels"], ::4, ::4] / 2


def _whole_parameters(codec_: ChannelConditionalLatentCodec, y: torch.Tensor, z: torch.Tensor) -> dict:
    """Group -> (indexes, means, fixed-point means) of the whole image, as :meth:`compress` computes them."""
    found = {}

    def code(group, y_group, p):
        found[group.transform] = p
        symbols = codec_.latents[group.transform].gaussian_conditional.quantize(y_group, "symbols", p[1])
        return symbols, codec_.integer.fixed_point(symbols, p[2])

    symbols_z = codec_.hyper.compress(z)["symbols"]
    codec_._walk(y, codec_._integer_parameters(codec_.integer.features(symbols_z)), code)
    return found


@pytest.mark.parametrize("band_rows", [4, 12, 20])
def test_parameters_in_bands_are_the_whole_image_ones(codec_, band_rows):
    """Every group's parameters of each band (read by the banded decoder from the decoded
    context of the groups before: the table indexes and the fixed-point means it keeps) are
    the whole image's, on 44 x 20 latents (11 x 5 z); so are the float means made from them."""
    y, z = _latents(44, 20)
    whole = _whole_parameters(codec_, y, z)
    out = codec_.compress(y, z)
    decoded = codec_.decompress_in_bands(out["strings"], out["shapes"], band_rows)
    for group, decoder in zip(codec_.groups, decoded.decoders):
        bands = [decoder.parameters(start, min(44, start + band_rows)) for start in range(0, 44, band_rows)]
        indexes, means = (np.concatenate([b[k] for b in bands], axis=1) for k in range(2))
        whole_indexes, whole_means, whole_fixed = (t[0].numpy() for t in whole[group.transform])  # at the group's positions
        assert np.array_equal(indexes, whole_indexes) and np.array_equal(means, whole_fixed)
        zero = np.zeros(means.shape, np.int32)
        assert np.array_equal(decoder.y_hat_of(zero, means), whole_means)


@pytest.mark.parametrize("band_rows", [8, 12])
def test_coding_in_bands_gives_the_whole_image_bytes_and_latents(codec_, band_rows):
    y, _ = _latents(44, 12, seed=band_rows)
    with torch.inference_mode():
        whole = codec_.compress(y)  # z = h_a(y), as in bands
    with torch.inference_mode():
        banded = codec_.compress_in_bands(lambda a, b: y[..., a:b, :], (y.shape[1], 44, 12), band_rows)
    assert banded["strings"] == whole["strings"] and banded["shapes"] == whole["shapes"]
    decoder = codec_.decompress_in_bands(whole["strings"], whole["shapes"], band_rows)
    rows = [decoder.rows(a, min(44, a + 7)) for a in range(0, 44, 7)]  # odd cuts: halves merge from odd rows
    assert torch.equal(torch.cat(rows, dim=-2), whole["y_hat"])


def test_the_band_halo_is_needed(codec_, monkeypatch):
    """With a context halo one row short, the banded parameters differ from the whole image's."""
    y, _ = _latents(24, 12, seed=3)
    with torch.inference_mode():
        whole = codec_.compress(y)
    monkeypatch.setattr(IntegerChannelConditionalParameters, "context_halo", property(lambda self: 0))
    with torch.inference_mode():
        banded = codec_.compress_in_bands(lambda a, b: y[..., a:b, :], (y.shape[1], 24, 12), 4)
    assert banded["strings"] != whole["strings"]


@pytest.fixture
def cc_banded(tiny_weights, tmp_path, monkeypatch):
    """A symmetric tiny walloc-cc (checkerboard over 2 slices) whose files of a few hundred
    pixels are coded in bands (8 latent rows, parameters in bands of 4), with ``y``
    substreams of about 64 values that run across bands and channels."""
    from conftest import code_in_small_bands

    from codec.models.weights import save_weights

    config = dict(TINY_CB, boundary="symmetric")
    path = tmp_path / "tiny-cc-sym.safetensors"
    save_weights(_cc_from(tiny_weights, perturb=0.2, config=TINY_CB), path, architecture="walloc-cc", config=config)
    return str(path), code_in_small_bands(monkeypatch, ChannelConditionalLatentCodec)


@pytest.mark.parametrize("size", [(233, 64), (321, 18)])
def test_walloc_cc_files_in_bands_are_the_whole_image_ones(cc_banded, size):
    from codec import api, bitstream

    weights, calls = cc_banded
    height, width = size
    rng = np.random.default_rng(height)
    rgb = (np.linspace(0, 255, width)[None, :, None] + rng.normal(0, 40, (height, width, 3))).clip(0, 255).astype(np.uint8)
    net = api.resolve_model(weights)
    whole = api.encode_tensor(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255, net, 3.0)[0]
    assert not calls  # encode_tensor codes the whole image
    data = api.encode(rgb, model=net, quality=3.0)
    assert calls == ["compress_in_bands"] and data == whole
    _, sections = bitstream.unpack(data)
    assert len(sections[1].substreams) > TINY_WALLOC["latent_channels"] // 2  # substreams cross bands and channels
    pixels = np.asarray(api.decode(data, model=net))
    assert calls == ["compress_in_bands", "decompress_in_bands"]
    expected = (api.decode_to_tensor([data], model=net)[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(pixels, expected)
