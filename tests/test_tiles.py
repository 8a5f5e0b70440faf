"""Tiles of a large image's transforms (``--tile``, :mod:`codec.tiling`): any tile size gives
the whole-image computation's bytes, and its pixels up to float rounding (the transforms are
float convolutions, which may round differently on tensors of other shapes: the tiny random
models here move a few pixels in a million by one level; the shipped models' pixels were
identical for every tile measured, docs/large-images.md); bad sizes are one-line errors."""
import numpy as np
import pytest
import torch
from conftest import TINY_WALLOC

from codec import api
from codec.models.weights import build_model
from codec.tiling import parse_tile, tiles_of


def _photo(height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(height * width)
    ramp = np.linspace(0, 255, width)[None, :, None] + np.linspace(0, 80, height)[:, None, None]
    return (ramp + rng.normal(0, 30, (height, width, 3))).clip(0, 255).astype(np.uint8)


def assert_same_pixels(pixels: np.ndarray, expected: np.ndarray) -> None:
    """Equal, but for float rounding: at most one level, in at most 1 pixel in 10,000."""
    difference = np.abs(pixels.astype(int) - expected.astype(int))
    assert difference.max() <= 1 and np.count_nonzero(difference) <= expected.size // 10_000


def _whole(net, rgb: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The whole-image path's file and decoded pixels (no bands, no tiles)."""
    data = api.encode_tensor(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255, net, 3.0)[0]
    pixels = (api.decode_to_tensor([data], model=net)[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return data, pixels


def assert_tiles_give_the_whole_image_bytes(monkeypatch, tmp_path, net, config: dict, tiles: list) -> list[str]:
    """Save ``net`` (a tiny walloc of ``config``) and code a photo whole, then in small bands
    (:func:`conftest.code_in_small_bands`) with each of ``tiles``: the same file each time, and
    the whole file decodes in tiles within one level. Returns the banded calls made."""
    from conftest import code_in_small_bands

    from codec.latent_codecs.hyperprior import HyperpriorLatentCodec
    from codec.models.weights import save_weights

    path = tmp_path / "net.safetensors"
    save_weights(net, path, architecture="walloc", config=config)
    calls = code_in_small_bands(monkeypatch, HyperpriorLatentCodec)
    net = api.resolve_model(str(path))
    rgb = _photo(601, 555)
    data, pixels = _whole(net, rgb)
    for tile in tiles:
        assert api.encode(rgb, model=net, quality=3.0, tile=tile) == data, tile
        decoded = np.asarray(api.decode(data, model=net, tile=tile))
        assert np.abs(decoded.astype(int) - pixels.astype(int)).max() <= 1
    return calls


# Odd sizes in pixels, and tiles (rows x columns of pixels) that divide neither side; the
# tiny model's latents are 8 x 8 pixels, its halos 4 (analysis) and 7 (synthesis) latents.
SIZES = [(601, 555), (457, 803)]
TILES = [(256, 256), (256, 328), "300x520", 999]


@pytest.mark.parametrize("size", SIZES)
def test_any_tiles_give_the_whole_image_bytes_and_pixels(banded_coding, size):
    weights, calls = banded_coding
    net = api.resolve_model(weights)
    rgb = _photo(*size)
    data, pixels = _whole(net, rgb)
    for tile in TILES:
        assert api.encode(rgb, model=net, quality=3.0, tile=tile) == data, tile
        assert_same_pixels(np.asarray(api.decode(data, model=net, tile=tile)), pixels)
    # The banded path ran for every tile but 999 px, whose band holds the whole image.
    assert calls.count("compress_in_bands") == calls.count("decompress_in_bands") == len(TILES) - 1


def test_walloc_cc_tiles_give_the_whole_image_bytes_and_pixels(tiny_weights, tmp_path, monkeypatch):
    from conftest import code_in_small_bands
    from test_walloc_cc_bands import TINY_CB, _cc_from

    from codec.latent_codecs.channel_conditional import ChannelConditionalLatentCodec
    from codec.models.weights import save_weights

    path = tmp_path / "tiny-cc-sym.safetensors"
    save_weights(_cc_from(tiny_weights, perturb=0.2, config=TINY_CB), path, architecture="walloc-cc",
                 config=dict(TINY_CB, boundary="symmetric"))
    calls = code_in_small_bands(monkeypatch, ChannelConditionalLatentCodec)
    net = api.resolve_model(str(path))
    rgb = _photo(*SIZES[0])
    data, pixels = _whole(net, rgb)
    for tile in TILES[:2]:
        assert api.encode(rgb, model=net, quality=3.0, tile=tile) == data, tile
        assert_same_pixels(np.asarray(api.decode(data, model=net, tile=tile)), pixels)
    assert calls == ["compress_in_bands", "decompress_in_bands"] * 2


@pytest.mark.parametrize("columns", [5, 13, 32])
def test_column_tiles_agree_with_whole_rows(monkeypatch, columns):
    """g_a and g_s in tiles of a few latent columns (and bands of 8 rows) against the whole
    image, on a symmetric model with a decoder whose residual path counts."""
    torch.manual_seed(0)
    net = build_model("walloc", dict(TINY_WALLOC, boundary="symmetric")).eval()
    for p in net.decoder.parameters():
        p.data.normal_(0, 0.3)
    monkeypatch.setattr(type(net), "BAND_ROWS", 8)
    monkeypatch.setattr(type(net), "WHOLE_IMAGE_ROWS", 0)
    monkeypatch.setattr(type(net), "TILE_COLUMNS", columns)
    x = torch.rand(1, 3, 8 * 41, 8 * 53)
    y = torch.randn(1, TINY_WALLOC["latent_channels"], 41, 53) * 4
    with torch.inference_mode():
        torch.testing.assert_close(net.g_a(x), net.encoder(net.coefficients(x)), rtol=0, atol=1e-5)
        whole = net._synthesise(y)  # values in the hundreds: compare to float rounding of those
        torch.testing.assert_close(net.g_s(y), whole, rtol=0, atol=1e-6 * float(whole.abs().max()))


def test_the_tile_is_read_once_in_the_callers_context(monkeypatch):
    net = build_model("walloc", dict(TINY_WALLOC, boundary="symmetric"))
    assert net.tile() == (net.BAND_ROWS, net.TILE_COLUMNS)
    with tiles_of((300, 1030)):
        assert net.tile() == (300 // 8, 1030 // 8)
    assert net.tile() == (net.BAND_ROWS, net.TILE_COLUMNS)


@pytest.mark.parametrize("text, expected", [("512", (512, 512)), ("256x1024", (256, 1024)), (" 300 X 400 ", (300, 400))])
def test_parse_tile(text, expected):
    assert parse_tile(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "12x", "x12", "512x", "-512", "100", "256x100000", "1.5k"])
def test_bad_tiles_are_refused(text):
    with pytest.raises(ValueError, match="tile"):
        parse_tile(text)


@pytest.mark.parametrize("tile", [100, (256,), (256, 70000), "big", True, 2.5])
def test_bad_tiles_in_the_library_are_input_errors(tile):
    from codec.errors import InputError

    with pytest.raises(InputError, match="tile"):
        api.encode(np.zeros((16, 16, 3), np.uint8), model="walloc", tile=tile)


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_bad_tile_on_the_command_line_is_one_line_and_exit_2(tmp_path, capsys, command):
    from codec.cli import main

    source = tmp_path / ("in.png" if command == "encode" else "in.bin")
    source.write_bytes(b"")
    with pytest.raises(SystemExit) as exit_:
        main([command, str(source), str(tmp_path / "out"), "--tile", "100"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].endswith("tile sides must be 256 to 65536 pixels, got 100x100")
    assert "Traceback" not in err and sorted(p.name for p in tmp_path.iterdir()) == [source.name]


def test_a_wide_short_image_is_tiled_too(banded_coding, monkeypatch):
    """Rows within WHOLE_IMAGE_ROWS but columns beyond WHOLE_IMAGE_COLUMNS: coded in bands and
    tiles (a short panorama must not take the memory of the whole image), same bytes."""
    from codec.models.walloc import WaLLoC

    weights, calls = banded_coding
    monkeypatch.setattr(WaLLoC, "WHOLE_IMAGE_ROWS", 150)
    monkeypatch.setattr(WaLLoC, "WHOLE_IMAGE_COLUMNS", 16)
    net = api.resolve_model(weights)
    rgb = _photo(72, 1203)
    data, pixels = _whole(net, rgb)
    assert api.encode(rgb, model=net, quality=3.0, tile=256) == data
    assert_same_pixels(np.asarray(api.decode(data, model=net, tile=256)), pixels)
    assert calls == ["compress_in_bands", "decompress_in_bands"]
    monkeypatch.setattr(WaLLoC, "WHOLE_IMAGE_COLUMNS", 256)
    assert api.encode(rgb, model=net, quality=3.0) == data and len(calls) == 2  # taken whole


def test_pixel_rows_of_a_tile_are_those_of_the_band():
    """``pixel_rows(...)(index, first, stop)`` is columns first:stop of the whole band, the
    padding columns (copies of the last one) included, for any tile."""
    rgb = np.random.default_rng(1).integers(0, 256, (5, 13, 3), dtype=np.uint8)
    pixels = api.pixel_rows(rgb, 3, torch.device("cpu"))
    index = torch.tensor([4, 0, 2, 7])  # rows past the last repeat it
    whole = pixels(index)
    assert whole.shape == (1, 3, 4, 16)
    for first in range(16):
        for stop in range(first + 1, 17):
            assert torch.equal(pixels(index, first, stop), whole[..., first:stop]), (first, stop)
    with pytest.raises(ValueError, match="columns"):
        pixels(index, 3, 17)


def test_coding_bands_of_wide_images_take_fewer_rows(monkeypatch):
    net = build_model("walloc", dict(TINY_WALLOC, boundary="symmetric"))
    assert net._coding_rows(100_000) == net.CODING_ROWS  # walloc: no limit
    monkeypatch.setattr(type(net), "CODING_LATENTS", 64 * 768)  # walloc-cc's
    rows = {cols: net._coding_rows(cols) for cols in (1, 96, 768, 1000, 2500, 10_000, 100_000)}
    assert rows[1] == rows[96] == rows[768] == net.CODING_ROWS
    assert rows[1000] == 48 and rows[2500] == 16 and rows[10_000] == rows[100_000] == 8
