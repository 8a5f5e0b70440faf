"""Container format: round trip of every header field and section, the documented errors,
and version 1 files (tests/expected/) still read."""
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from codec import bitstream
from codec.bitstream import Section
from codec.errors import BitstreamError

EXPECTED = Path(__file__).resolve().parent / "expected"


def _header(**kw):
    fields = dict(model="walloc", weights_hash=bytes(range(8)), quality=3.25, width=17, height=33,
                  pad_right=15, pad_bottom=31, flags=bitstream.FLAG_GRAYSCALE)
    fields.update(kw)
    return bitstream.Header(**fields)


def _sections(*payloads: bytes) -> list[Section]:
    """One single-substream section per payload, named s0, s1, ..."""
    return [Section(f"s{i}", (len(p) + 1, 2, 3), [p]) for i, p in enumerate(payloads)]


def _with_crc(data: bytes, payload_length: int) -> bytes:
    """``data`` with its CRC-32 recomputed (the CRC sits before the last ``payload_length`` bytes)."""
    crc_at = len(data) - payload_length - 4
    crc = zlib.crc32(data[crc_at + 4:], zlib.crc32(data[:crc_at]))
    return data[:crc_at] + struct.pack("<I", crc) + data[crc_at + 4:]


def test_round_trip_keeps_every_field():
    sections = [Section("z", (4, 1, 2), [b"zz"]), Section("y", (48, 8, 12), [b"y" * 300, b"", b"yy"])]
    data = bitstream.pack(_header(coder=0), sections)
    header, out = bitstream.unpack(data)
    assert out == sections
    assert (header.model, header.weights_hash, header.quality) == ("walloc", bytes(range(8)), 3.25)
    assert (header.width, header.height, header.pad_right, header.pad_bottom) == (17, 33, 15, 31)
    assert header.grayscale and header.version == bitstream.FORMAT_VERSION == data[4] == 2
    assert header.section_lengths == [2, 302] and (header.coder, header.coder_name) == (0, "cpu")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.binary(max_size=200), min_size=1, max_size=3), min_size=1, max_size=4),
       st.integers(1, 16384), st.integers(1, 4096))
def test_round_trip_any_sections(substreams, width, height):
    sections = [Section(f"n{i}", (i + 1, 300, 70000), s) for i, s in enumerate(substreams)]
    header, out = bitstream.unpack(bitstream.pack(_header(width=width, height=height), sections))
    assert out == sections and (header.width, header.height) == (width, height)


def test_wrong_magic():
    data = bytearray(bitstream.pack(_header(), _sections(b"a", b"b")))
    data[0] ^= 0xFF
    with pytest.raises(BitstreamError, match="magic"):
        bitstream.unpack(bytes(data))
    with pytest.raises(BitstreamError, match="magic"):
        bitstream.unpack(b"")


def test_unknown_version():
    data = bytearray(bitstream.pack(_header(), _sections(b"a", b"b")))
    data[4] = 99
    with pytest.raises(BitstreamError, match="version 99"):
        bitstream.unpack(bytes(data))


def test_every_truncation_is_reported():
    data = bitstream.pack(_header(), [Section("z", (3,), [b"z" * 10]), Section("y", (2, 2), [b"y" * 50, b"y"])])
    for n in range(len(data)):
        with pytest.raises(BitstreamError, match="truncated|magic"):
            bitstream.unpack(data[:n])


def test_crc_mismatch_and_trailing_bytes():
    data = bytearray(bitstream.pack(_header(), _sections(b"z" * 10, b"y" * 50)))
    data[-5] ^= 1
    with pytest.raises(BitstreamError, match="CRC"):
        bitstream.unpack(bytes(data))
    good = bitstream.pack(_header(), _sections(b"z", b"y"))
    with pytest.raises(BitstreamError, match="unexpected bytes"):
        bitstream.unpack(good + b"\0")


def test_header_corruption_is_caught():
    data = bytes(bitstream.pack(_header(), _sections(b"z" * 10, b"y" * 50)))
    for i in range(5, len(data) - 60):
        corrupt = bytearray(data)
        corrupt[i] ^= 0x10
        with pytest.raises(BitstreamError):
            bitstream.unpack(bytes(corrupt))


def test_forged_size_with_valid_crc_is_refused():
    data = bytearray(bitstream.pack(_header(), _sections(b"z", b"y")))
    offset = 4 + 3 + len("walloc") + 8 + 4  # width field
    data[offset:offset + 4] = struct.pack("<I", 10**6)
    with pytest.raises(BitstreamError, match="corrupt header"):
        bitstream.unpack(_with_crc(bytes(data), 2))


def _forged_table(table: bytes, payload: bytes = b"ab") -> bytes:
    """A file whose section table is ``table`` (one section expected), CRC recomputed."""
    head = bitstream.pack(_header(), [Section("z", (1,), [payload])])
    start = 4 + 3 + len("walloc") + 8 + 4 + 8 + 4 + 2  # after coder and section count
    return _with_crc(head[:start] + table + head[-4 - len(payload):], len(payload))


def test_section_table_faults_are_bitstream_errors():
    good = b"\x01z" + b"\x01\x01" + b"\x01\x02"
    assert bitstream.unpack(_forged_table(good))[1] == [Section("z", (1,), [b"ab"])]
    faults = {
        "section name length": b"\x00" + good[2:],
        "non-printable": b"\x01\x07" + good[2:],
        "rank": b"\x01z\x00\x01\x02",
        "latent shape": b"\x01z\x01\x00\x01\x02",
        "out of range": b"\x01z\x02\x80\x80\x80\x01\x80\x80\x80\x01\x01\x02",  # 2^21 x 2^21 values
        "substream count": b"\x01z\x01\x01\x00",
        "overlong": b"\x01z\x01\x01\x01\x82\x00",
    }
    for message, table in faults.items():
        with pytest.raises(BitstreamError, match=message):
            bitstream.unpack(_forged_table(table))
    data = bytearray(bitstream.pack(_header(), _sections(b"a", b"b")))
    data[4 + 3 + len("walloc") + 8 + 16] = 7  # coder id
    with pytest.raises(BitstreamError, match="unknown coder id 7"):
        bitstream.unpack(_with_crc(bytes(data), 2))
    twice = bitstream.pack(_header(), _sections(b"a", b"b")).replace(b"\x02s1", b"\x02s0")
    with pytest.raises(BitstreamError, match="same name"):
        bitstream.unpack(_with_crc(twice, 2))


def test_overlong_section_length_is_refused():
    """A length has one encoding: a LEB128 group of zeros after the last one is refused."""
    header = bitstream.Header("m", b"\0" * 8, 3.0, 8, 8)
    data = bitstream.pack(header, [Section("a", (1,), [b"ab"]), Section("b", (1,), [b"c"])])
    payload = b"abc"
    head = data[: len(data) - len(payload) - 4]
    assert head.endswith(b"\x01b\x01\x01\x01\x01")  # the second section's table entry
    overlong = head[:-1] + bytes([0x81, 0x00])
    with pytest.raises(BitstreamError, match="overlong"):
        bitstream.unpack(_with_crc(overlong + b"\0\0\0\0" + payload, len(payload)))


def test_pack_validates():
    with pytest.raises(ValueError, match="model name"):
        bitstream.pack(_header(model=""), _sections(b""))
    with pytest.raises(ValueError, match="image size"):
        bitstream.pack(_header(width=0), _sections(b""))
    with pytest.raises(ValueError, match="coder"):
        bitstream.pack(_header(coder=9), _sections(b""))
    with pytest.raises(ValueError, match="unique"):
        bitstream.pack(_header(), [Section("y", (1,), [b""]), Section("y", (1,), [b""])])
    for bad in (Section("", (1,), [b""]), Section("y y", (1,), [b""]), Section("y", (), [b""]),
                Section("y", (0, 3), [b""]), Section("y", (1, 1, 1, 1, 1), [b""]), Section("y", (1,), [])):
        with pytest.raises(ValueError, match="section"):
            bitstream.pack(_header(), [bad])
    with pytest.raises(TypeError):
        bitstream.unpack("not bytes")


@pytest.mark.parametrize("name", ["walloc-c6ae3726_v1.bin", "hyperprior-cce504fb_v1.bin"])
def test_version_1_files_are_read(name):
    data = (EXPECTED / name).read_bytes()
    header, sections = bitstream.unpack(data)
    assert header.version == 1 and header.coder_name == "cpu" and (header.width, header.height) == (96, 64)
    assert [(s.name, s.shape, len(s.substreams)) for s in sections] == [("z", (), 1), ("y", (), 1)]
    for n in range(len(data)):
        with pytest.raises(BitstreamError, match="truncated|magic"):
            bitstream.unpack(data[:n])
    for i in range(len(data)):
        corrupt = bytearray(data)
        corrupt[i] ^= 0x04
        with pytest.raises(BitstreamError):
            bitstream.unpack(bytes(corrupt))
