"""The streaming PNG writer (codec/png_writer.py) and the decoders that write PNGs with it:
the files are valid PNGs that Pillow reads back with the pixels written."""
import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from codec import png_writer
from codec.png_writer import PngWriter, filter_rows, write_png


def _read(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return np.asarray(image)


def _png(pixels: np.ndarray, bands=(None,)) -> bytes:
    f = io.BytesIO()
    writer = PngWriter(f, pixels.shape[1], pixels.shape[0], 3 if pixels.ndim == 3 else 1)
    start = 0
    for stop in [*bands[:-1], len(pixels)]:
        writer.write(pixels[start:stop])
        start = stop
    writer.close()
    return f.getvalue()


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1), (3, 5, 3), (7, 13), (17, 1, 3), (40, 33, 3), (65, 129)])
def test_round_trip_of_odd_sizes_rgb_and_gray(shape):
    pixels = np.random.default_rng(len(shape) * 100 + shape[0]).integers(0, 256, shape, dtype=np.uint8)
    data = _png(pixels)
    back = _read(data)
    assert data[:8] == png_writer.SIGNATURE and back.shape == pixels.shape and np.array_equal(back, pixels)
    assert Image.open(io.BytesIO(data)).mode == ("RGB" if len(shape) == 3 else "L")


def test_bands_of_any_heights_and_small_batches_and_chunks_give_the_same_pixels(monkeypatch):
    rng = np.random.default_rng(1)
    smooth = (np.linspace(0, 255, 50)[None, :, None] + rng.normal(0, 9, (37, 50, 3))).clip(0, 255).astype(np.uint8)
    whole = _png(smooth)
    monkeypatch.setattr(png_writer, "BATCH_BYTES", 1)  # a row per batch: the prior row crosses batches
    monkeypatch.setattr(png_writer, "IDAT_BYTES", 100)  # many IDAT chunks
    banded = _png(smooth, bands=(1, 2, 10, 11, 30))
    assert np.array_equal(_read(banded), smooth) and np.array_equal(_read(whole), smooth)
    assert banded.count(b"IDAT") > 5


def test_every_filter_is_chosen_somewhere_and_each_inverts():
    """Rows made for each filter: the least-cost choice picks it, and Pillow undoes it."""
    width, rng = 64, np.random.default_rng(2)
    rows = [np.zeros(width * 3, np.uint8), rng.integers(0, 256, width * 3, dtype=np.uint8)]
    rows.append(np.tile(rng.integers(0, 256, 3, dtype=np.uint8), width))  # constant pixel: Sub
    rows.append(rows[-1].copy())  # the row above again: Up
    ramp = np.arange(width * 3, dtype=np.uint8)
    rows += [ramp, ramp + 1, (ramp * 2).astype(np.uint8)]
    pixels = np.stack(rows).reshape(len(rows), width, 3)
    chosen = filter_rows(pixels.reshape(len(rows), -1), np.zeros(width * 3, np.uint8), 3)[:, 0]
    assert chosen[0] == 0 and chosen[2] == 1 and chosen[3] == 2
    noise = rng.integers(0, 256, (40, width, 3), dtype=np.uint8)
    smooth = np.cumsum(rng.integers(0, 3, (40, width, 3)), axis=0).astype(np.uint8)
    across = np.cumsum(rng.integers(0, 3, (40, width, 3)), axis=1).astype(np.uint8)
    both = np.concatenate([pixels, noise, smooth, across, smooth + across])
    assert np.array_equal(_read(_png(both)), both)
    assert set(filter_rows(both.reshape(len(both), -1), np.zeros(width * 3, np.uint8), 3)[:, 0]) >= {0, 1, 2}


def test_wrong_rows_are_refused():
    f = io.BytesIO()
    writer = PngWriter(f, 4, 2, 3)
    with pytest.raises(ValueError):
        writer.write(np.zeros((1, 5, 3), np.uint8))
    with pytest.raises(ValueError):
        writer.write(np.zeros((1, 4), np.uint8))
    with pytest.raises(ValueError):
        writer.write(np.zeros((1, 4, 3), np.float32))
    writer.write(np.zeros((1, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="1 of the 2 rows"):
        writer.close()
    with pytest.raises(ValueError, match="more than"):
        writer.write(np.zeros((2, 4, 3), np.uint8))
    with pytest.raises(ValueError):
        PngWriter(io.BytesIO(), 0, 2, 3)


def test_write_png(tmp_path):
    pixels = np.random.default_rng(3).integers(0, 256, (9, 11), dtype=np.uint8)
    write_png(str(tmp_path / "a.png"), pixels)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), pixels)


@pytest.mark.parametrize("grayscale", [False, True])
def test_decode_png_has_the_pixels_of_decode_in_bands(banded_coding, grayscale):
    from codec import api

    weights, calls = banded_coding
    net = api.resolve_model(weights)
    rng = np.random.default_rng(4)
    rgb = (np.linspace(0, 255, 37)[None, :, None] + rng.normal(0, 40, (233, 37, 3))).clip(0, 255).astype(np.uint8)
    data = api.encode(rgb[:, :, 0] if grayscale else rgb, model=net, quality=3.0)
    f = io.BytesIO()
    assert api.decode_png(data, f, model=net, threads=2) == (37, 233, "L" if grayscale else "RGB")
    assert calls == ["compress_in_bands", "decompress_in_bands"]
    assert np.array_equal(_read(f.getvalue()), np.asarray(api.decode(data, model=net)))


def test_decode_png_of_a_whole_image_file(tiny_weights):
    from codec import api

    rgb = np.random.default_rng(5).integers(0, 256, (21, 30, 3), dtype=np.uint8)
    data = api.encode(rgb, model=str(tiny_weights))
    f = io.BytesIO()
    api.decode_png(data, f, model=str(tiny_weights))
    assert np.array_equal(_read(f.getvalue()), np.asarray(api.decode(data, model=str(tiny_weights))))


def _codec(*args):
    return subprocess.run([sys.executable, "-m", "codec", *map(str, args)], capture_output=True, text=True)


def test_cli_decode_writes_the_pixels_of_decode_as_png_and_other_formats_as_before(tmp_path, tiny_weights):
    from codec import api

    rgb = np.random.default_rng(6).integers(0, 256, (19, 26, 3), dtype=np.uint8)
    data = api.encode(rgb, model=str(tiny_weights))
    (tmp_path / "a.bin").write_bytes(data)
    expected = np.asarray(api.decode(data, model=str(tiny_weights)))
    for name in ("a.png", "a.bmp"):
        out = _codec("decode", tmp_path / "a.bin", tmp_path / name, "--model", tiny_weights)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith(f"{tmp_path / name}: 26x19 RGB (")
        assert np.array_equal(np.asarray(Image.open(tmp_path / name)), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "a.bmp", "a.png"]


def test_cli_decode_failing_midway_leaves_no_file(tmp_path, tiny_weights, monkeypatch, capsys):
    """An error (or Ctrl-C) while the PNG is being written removes its temporary file."""
    from codec import api
    from codec.cli import main

    data = api.encode(np.zeros((16, 16, 3), np.uint8), model=str(tiny_weights))
    (tmp_path / "a.bin").write_bytes(data)

    def interrupted(self, rows):
        raise KeyboardInterrupt

    monkeypatch.setattr(PngWriter, "write", interrupted)
    code = main(["decode", str(tmp_path / "a.bin"), str(tmp_path / "a.png"), "--model", str(tiny_weights)])
    assert code == 130 and "interrupted" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
