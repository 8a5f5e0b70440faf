"""Container format: round trip of every header field and the documented errors."""
import struct
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from codec import bitstream
from codec.errors import BitstreamError


def _header(**kw):
    fields = dict(model="walloc", weights_hash=bytes(range(8)), quality=3.25, width=17, height=33,
                  pad_right=15, pad_bottom=31, flags=bitstream.FLAG_GRAYSCALE)
    fields.update(kw)
    return bitstream.Header(**fields)


def test_round_trip_keeps_every_field():
    data = bitstream.pack(_header(), [b"zz", b"y" * 300])
    header, sections = bitstream.unpack(data)
    assert sections == [b"zz", b"y" * 300]
    assert (header.model, header.weights_hash, header.quality) == ("walloc", bytes(range(8)), 3.25)
    assert (header.width, header.height, header.pad_right, header.pad_bottom) == (17, 33, 15, 31)
    assert header.grayscale and header.version == bitstream.FORMAT_VERSION
    assert header.section_lengths == [2, 300]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=4), st.integers(1, 16384), st.integers(1, 4096))
def test_round_trip_any_sections(sections, width, height):
    header, out = bitstream.unpack(bitstream.pack(_header(width=width, height=height), sections))
    assert out == sections and (header.width, header.height) == (width, height)


def test_wrong_magic():
    data = bytearray(bitstream.pack(_header(), [b"a", b"b"]))
    data[0] ^= 0xFF
    with pytest.raises(BitstreamError, match="magic"):
        bitstream.unpack(bytes(data))
    with pytest.raises(BitstreamError, match="magic"):
        bitstream.unpack(b"")


def test_unknown_version():
    data = bytearray(bitstream.pack(_header(), [b"a", b"b"]))
    data[4] = 99
    with pytest.raises(BitstreamError, match="version 99"):
        bitstream.unpack(bytes(data))


def test_every_truncation_is_reported():
    data = bitstream.pack(_header(), [b"z" * 10, b"y" * 50])
    for n in range(len(data)):
        with pytest.raises(BitstreamError, match="truncated|magic"):
            bitstream.unpack(data[:n])


def test_crc_mismatch_and_trailing_bytes():
    data = bytearray(bitstream.pack(_header(), [b"z" * 10, b"y" * 50]))
    data[-5] ^= 1
    with pytest.raises(BitstreamError, match="CRC"):
        bitstream.unpack(bytes(data))
    good = bitstream.pack(_header(), [b"z", b"y"])
    with pytest.raises(BitstreamError, match="unexpected bytes"):
        bitstream.unpack(good + b"\0")


def test_header_corruption_is_caught_by_the_crc():
    data = bytes(bitstream.pack(_header(), [b"z" * 10, b"y" * 50]))
    for i in range(5, 30):
        corrupt = bytearray(data)
        corrupt[i] ^= 0x10
        with pytest.raises(BitstreamError):
            bitstream.unpack(bytes(corrupt))


def test_forged_size_with_valid_crc_is_refused():
    data = bytearray(bitstream.pack(_header(), [b"z", b"y"]))
    offset = 4 + 3 + len("walloc") + 8 + 4  # width field
    data[offset:offset + 4] = struct.pack("<I", 10**6)
    crc_at = len(data) - 2 - 4
    data[crc_at:crc_at + 4] = struct.pack("<I", zlib.crc32(bytes(data[crc_at + 4:]), zlib.crc32(bytes(data[:crc_at]))))
    with pytest.raises(BitstreamError, match="corrupt header"):
        bitstream.unpack(bytes(data))


def test_pack_validates():
    with pytest.raises(ValueError, match="model name"):
        bitstream.pack(_header(model=""), [b""])
    with pytest.raises(ValueError, match="image size"):
        bitstream.pack(_header(width=0), [b""])
    with pytest.raises(TypeError):
        bitstream.unpack("not bytes")


def test_overlong_section_length_is_refused():
    """A length has one encoding: a LEB128 group of zeros after the last one is refused."""
    import struct
    import zlib

    header = bitstream.Header("m", b"\0" * 8, 3.0, 8, 8)
    data = bitstream.pack(header, [b"ab", b"c"])
    payload = b"abc"
    head = data[: len(data) - len(payload) - 4]
    assert head.endswith(bytes([2, 1]))  # the two section lengths
    overlong = head[:-2] + bytes([0x82, 0x00, 1])
    crc = zlib.crc32(overlong + payload) & 0xFFFFFFFF
    with pytest.raises(BitstreamError, match="overlong"):
        bitstream.unpack(overlong + struct.pack("<I", crc) + payload)
