"""Image size limits: checked before any pixel is decoded or converted, at and beyond the
format's bounds; running out of memory is one clear error with no output left behind."""
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

import codec
from codec import api, bitstream
from codec.cli import main
from codec.errors import InputError


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with one row of data: decoding
    its pixels would allocate the whole image; reading its header costs nothing."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * (1 + 3 * min(width, 64)))) + chunk(b"IEND", b""))


def test_limits_are_those_of_the_format():
    assert bitstream.MAX_SIDE == 65535 and bitstream.MAX_PIXELS == 1 << 28
    api.check_image_size(bitstream.MAX_SIDE, bitstream.MAX_PIXELS // bitstream.MAX_SIDE)
    api.check_image_size(1, bitstream.MAX_SIDE)
    for width, height in [(bitstream.MAX_SIDE + 1, 1), (1, bitstream.MAX_SIDE + 1), (16385, 16385), (0, 5)]:
        with pytest.raises(InputError, match="beyond the limits"):
            api.check_image_size(width, height)
    at_limit = bitstream.Header("walloc", b"\0" * 8, 3.0, bitstream.MAX_SIDE, bitstream.MAX_PIXELS // bitstream.MAX_SIDE)
    bitstream.validate_header(at_limit)
    at_limit.height += 1
    with pytest.raises(ValueError, match="exceeds the limit"):
        bitstream.validate_header(at_limit)


@pytest.mark.parametrize("size", [(bitstream.MAX_SIDE + 1, 8), (20000, 20000)])
def test_oversized_file_is_refused_before_its_pixels_are_decoded(size, tiny_weights, monkeypatch, tmp_path):
    def no_load(self):
        raise AssertionError("pixels decoded before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_load)
    path = tmp_path / "huge.png"
    path.write_bytes(_png_claiming(*size))
    with pytest.raises(InputError, match=f"{size[0]}x{size[1]} pixels is beyond the limits"):
        codec.encode(str(path), model=str(tiny_weights))
    assert main(["encode", str(path), str(tmp_path / "huge.bin"), "--model", str(tiny_weights)]) == 1
    assert not (tmp_path / "huge.bin").exists()


def test_a_size_pillow_calls_a_bomb_is_read_when_within_the_limits(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow refuses above twice this
    image = np.zeros((20, 30, 3), np.uint8)
    Image.fromarray(image).save(buffer := __import__("io").BytesIO(), format="PNG")
    loaded = codec.image_io.load_image(buffer.getvalue(), api.check_image_size)
    assert loaded.rgb.shape == (20, 30, 3) and Image.MAX_IMAGE_PIXELS == 100


def test_running_out_of_memory_anywhere_is_one_line_and_no_file(monkeypatch, tmp_path, capsys, tiny_weights):
    def no_memory(*args, **kwargs):
        raise MemoryError

    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "in.png")
    monkeypatch.setattr(api, "encode", no_memory)
    assert main(["encode", str(tmp_path / "in.png"), str(tmp_path / "out.bin"), "--model", str(tiny_weights)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "codec encode: error: not enough memory" and "Traceback" not in err
    assert not (tmp_path / "out.bin").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_ctrl_c_while_writing_leaves_no_file(monkeypatch, tmp_path, capsys, tiny_weights):
    from pathlib import Path

    def interrupted(self, data):
        Path.write_text(self, "partial")
        raise KeyboardInterrupt

    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "in.png")
    monkeypatch.setattr(Path, "write_bytes", interrupted)
    assert main(["encode", str(tmp_path / "in.png"), str(tmp_path / "out.bin"), "--model", str(tiny_weights)]) == 130
    assert capsys.readouterr().err.strip() == "codec: interrupted"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]  # neither the output nor a temporary file
