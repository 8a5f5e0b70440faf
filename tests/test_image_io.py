"""Input conversions documented in docs/formats.md."""
import warnings

import numpy as np
import pytest
from PIL import Image

from codec.errors import ConversionWarning, InputError
from codec.fileio import atomic_write
from codec.image_io import load_image, save_image


def _load_quiet(source):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_image(source)
    return loaded, [str(w.message) for w in caught if w.category is ConversionWarning]


def test_rgb_passes_unchanged(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    for source in (tmp_path / "a.png", str(tmp_path / "a.png"), Image.fromarray(rgb), rgb):
        loaded, warned = _load_quiet(source)
        assert np.array_equal(loaded.rgb, rgb) and not loaded.grayscale and not warned


def test_grayscale_is_flagged_without_warning():
    gray = np.arange(30, dtype=np.uint8).reshape(5, 6)
    loaded, warned = _load_quiet(Image.fromarray(gray))
    assert loaded.grayscale and loaded.rgb.shape == (5, 6, 3) and np.array_equal(loaded.rgb[:, :, 1], gray)
    assert not warned


def test_sixteen_bit_is_reduced_with_warning():
    gray = (np.arange(12, dtype=np.uint16) * 5000).reshape(3, 4)
    loaded, warned = _load_quiet(gray)
    assert loaded.grayscale and any("reduced to 8 bits (0..65535 scaled to 0..255)" in w for w in warned)
    assert loaded.rgb[2, 3, 0] == round(55000 * 255 / 65535)


def test_alpha_dropped_with_warning_only_when_not_opaque():
    rgba = np.full((4, 4, 4), 200, dtype=np.uint8)
    rgba[:, :, 3] = 255
    assert not _load_quiet(Image.fromarray(rgba, "RGBA"))[1]
    rgba[0, 0, 3] = 10
    loaded, warned = _load_quiet(Image.fromarray(rgba, "RGBA"))
    assert loaded.rgb.shape == (4, 4, 3) and any("alpha" in w for w in warned)


def test_palette_converts_silently_and_cmyk_with_warning():
    palette = Image.new("P", (5, 5), 3)
    loaded, warned = _load_quiet(palette)
    assert not warned and np.array_equal(loaded.rgb, np.asarray(palette.convert("RGB")))
    cmyk = Image.new("CMYK", (5, 5), (0, 255, 0, 0))
    loaded, warned = _load_quiet(cmyk)
    assert any("CMYK" in w for w in warned) and tuple(loaded.rgb[0, 0]) == (255, 0, 255)


def test_refusals(tmp_path):
    with pytest.raises(InputError, match="floating-point"):
        load_image(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(InputError, match="mode 'F'"):
        load_image(Image.new("F", (4, 4)))
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="not a readable image"):
        load_image(tmp_path / "bad.png")
    with pytest.raises(InputError, match="empty"):
        load_image(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(InputError, match="shape"):
        load_image(np.zeros((4, 4, 2), np.uint8))


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    def fail(tmp):
        open(tmp, "wb").write(b"partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "out.bin", fail)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="extension"):
        save_image(Image.new("RGB", (2, 2)), tmp_path / "out.unknownext")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_gives_the_permissions_of_a_plain_open(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "out.bin", lambda tmp: open(tmp, "wb").write(b"x"))
    finally:
        os.umask(umask)
    assert (tmp_path / "out.bin").stat().st_mode & 0o777 == 0o644


def test_a_killed_writer_leaves_nothing_the_next_write_keeps(tmp_path):
    """SIGKILL during the final write leaves its temporary; the next write of that target
    removes it once stale, and leaves fresh ones (a live writer's) alone."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = ("import sys, time; from codec.fileio import atomic_write; "
              "atomic_write(sys.argv[1], lambda tmp: (open(tmp, 'wb').write(b'partial'), print('writing', flush=True), "
              "time.sleep(60)))")
    target = tmp_path / "out.bin"
    writer = subprocess.Popen([sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    leftovers = list(tmp_path.glob(".out.bin.*.tmp"))
    assert len(leftovers) == 1 and not target.exists()
    atomic_write(target, lambda tmp: open(tmp, "wb").write(b"new"))
    assert list(tmp_path.glob(".out.bin.*.tmp")) == leftovers  # fresh: maybe a live writer
    old = time.time() - 2 * 3600
    os.utime(leftovers[0], (old, old))
    atomic_write(target, lambda tmp: open(tmp, "wb").write(b"newer"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"] and target.read_bytes() == b"newer"


def test_large_images_convert_in_strips_with_the_same_pixels(tmp_path, monkeypatch):
    """Pillow images taller than a strip go to numpy a strip at a time: the same arrays."""
    from codec import image_io

    monkeypatch.setattr(image_io, "STRIP_ROWS", 4)
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (23, 5, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (23, 5), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(gray).save(tmp_path / "gray.png")
    assert np.array_equal(_load_quiet(tmp_path / "rgb.png")[0].rgb, rgb)
    loaded = _load_quiet(tmp_path / "gray.png")[0]
    assert loaded.grayscale and np.array_equal(loaded.rgb, np.repeat(gray[:, :, None], 3, axis=2))
    sixteen = (rng.integers(0, 65536, (9, 4))).astype(np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "16.png")
    loaded, warned = _load_quiet(tmp_path / "16.png")
    assert np.array_equal(loaded.rgb[:, :, 0], (sixteen.astype(np.uint32) * 255 + 32767) // 65535)
    assert any("16-bit" in w for w in warned) and loaded.rgb.flags.writeable


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_exif_orientation_is_applied(tmp_path, orientation):
    rgb = np.random.default_rng(8).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    image = Image.fromarray(rgb)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(tmp_path / "a.jpg", exif=exif, quality=100)
    image.save(tmp_path / "a.png", exif=exif)
    expected = {1: rgb, 3: np.rot90(rgb, 2), 6: np.rot90(rgb, -1), 8: np.rot90(rgb, 1)}[orientation]
    loaded = _load_quiet(tmp_path / "a.png")[0]
    assert np.array_equal(loaded.rgb, expected)
    assert _load_quiet(tmp_path / "a.jpg")[0].rgb.shape == expected.shape
