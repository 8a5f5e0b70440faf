"""The container around the entropy-coded streams: header fields, section lengths, CRC-32.

Layout (all integers little-endian; see docs/bitstream.md)::

    magic         4 bytes  b"\\x89LIC"
    version       u8       FORMAT_VERSION
    flags         u8       bit 0: the input was grayscale (decode returns mode "L")
    name length   u8       n, 1..32
    model name    n bytes  ASCII
    weights hash  8 bytes  first 8 bytes of the SHA-256 of the weights file
    quality       f32
    width         u32      original image width  (1..MAX_SIDE)
    height        u32      original image height (1..MAX_SIDE)
    pad right     u16      columns added before coding (replicated edge)
    pad bottom    u16      rows added before coding
    sections      u8       number of payload sections (2: hyper-latents z, latents y)
    lengths       LEB128   byte length of each section
    crc32         u32      CRC-32 of every byte before this field and of the payload
    payload       the sections, back to back

Parsing checks every field and raises :class:`codec.errors.BitstreamError` with one clear
message: wrong magic, unknown version, truncation, trailing bytes, CRC mismatch.
"""
from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field

from codec.errors import BitstreamError

MAGIC = b"\x89LIC"
FORMAT_VERSION = 1
#: Largest side and pixel count a file may declare (bounds the decoder's memory).
MAX_SIDE = 16384
MAX_PIXELS = 1 << 26
MAX_NAME = 32
MAX_SECTIONS = 8
FLAG_GRAYSCALE = 1
_KNOWN_FLAGS = FLAG_GRAYSCALE


@dataclass
class Header:
    """Every header field of a coded image."""

    model: str
    weights_hash: bytes
    quality: float
    width: int
    height: int
    pad_right: int = 0
    pad_bottom: int = 0
    flags: int = 0
    section_lengths: list[int] = field(default_factory=list)
    version: int = FORMAT_VERSION

    @property
    def grayscale(self) -> bool:
        return bool(self.flags & FLAG_GRAYSCALE)


def _leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _printable_ascii(text: str) -> bool:
    return all(" " < c < "\x7f" for c in text)


def validate_header(header: Header) -> None:
    """Raise ValueError when a header cannot be written (every field is checked)."""
    if not header.model or len(header.model) > MAX_NAME or not _printable_ascii(header.model):
        raise ValueError(f"model name must be 1..{MAX_NAME} printable ASCII characters, got {header.model!r}")
    if len(header.weights_hash) != 8:
        raise ValueError("weights_hash must be 8 bytes")
    if not (1 <= header.width <= MAX_SIDE and 1 <= header.height <= MAX_SIDE):
        raise ValueError(f"image size {header.width}x{header.height} outside 1..{MAX_SIDE}")
    if header.width * header.height > MAX_PIXELS:
        raise ValueError(f"image of {header.width * header.height} pixels exceeds the limit of {MAX_PIXELS}")
    if not (0 <= header.pad_right < 65536 and 0 <= header.pad_bottom < 65536):
        raise ValueError("padding must fit 16 bits")
    if not math.isfinite(header.quality):
        raise ValueError(f"quality must be finite, got {header.quality}")
    if header.flags & ~_KNOWN_FLAGS or not 0 <= header.flags < 256:
        raise ValueError(f"unknown flags {header.flags:#x}")


def pack(header: Header, sections: list[bytes]) -> bytes:
    """Serialize a header and its payload sections into one file's bytes."""
    validate_header(header)
    if not 1 <= len(sections) <= MAX_SECTIONS:
        raise ValueError(f"need 1..{MAX_SECTIONS} sections, got {len(sections)}")
    name = header.model.encode("ascii")
    head = bytearray(MAGIC)
    head += struct.pack("<BBB", FORMAT_VERSION, header.flags, len(name)) + name + header.weights_hash
    head += struct.pack("<fIIHHB", header.quality, header.width, header.height,
                        header.pad_right, header.pad_bottom, len(sections))
    for section in sections:
        head += _leb128(len(section))
    payload = b"".join(sections)
    crc = zlib.crc32(payload, zlib.crc32(head))
    return bytes(head) + struct.pack("<I", crc) + payload


class _Reader:
    """Bounds-checked reads; running past the end means a truncated file."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise BitstreamError(f"truncated file: it ends inside the {what}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))

    def leb128(self, what: str) -> int:
        value = 0
        for shift in range(0, 35, 7):
            (byte,) = self.take(1, what)
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if byte == 0 and shift:  # a trailing zero group: one length, several encodings
                    raise BitstreamError(f"corrupt file: {what} has an overlong encoding")
                return value
        raise BitstreamError(f"corrupt file: {what} is not a valid length")


def unpack(data: bytes) -> tuple[Header, list[bytes]]:
    """Parse and verify a file's bytes; returns its header and payload sections."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    reader = _Reader(data)
    magic = reader.take(len(MAGIC), "magic number") if len(data) >= len(MAGIC) else None
    if magic != MAGIC:
        raise BitstreamError("not a codec file (wrong magic number)")
    version, flags, name_length = reader.unpack("<BBB", "header")
    if version != FORMAT_VERSION:
        raise BitstreamError(f"unsupported format version {version} (this codec reads version {FORMAT_VERSION})")
    if not 1 <= name_length <= MAX_NAME:
        raise BitstreamError("corrupt header: bad model name length")
    try:
        model = reader.take(name_length, "model name").decode("ascii")
    except UnicodeDecodeError:
        raise BitstreamError("corrupt header: model name is not ASCII") from None
    if not _printable_ascii(model):
        raise BitstreamError("corrupt header: model name has non-printable characters")
    weights_hash = reader.take(8, "weights hash")
    quality, width, height, pad_right, pad_bottom, count = reader.unpack("<fIIHHB", "header")
    if not 1 <= count <= MAX_SECTIONS:
        raise BitstreamError("corrupt header: bad section count")
    lengths = [reader.leb128("section lengths") for _ in range(count)]
    (crc,) = reader.unpack("<I", "CRC-32")
    head_end = reader.pos - 4
    expected = reader.pos + sum(lengths)
    if len(data) < expected:
        raise BitstreamError(f"truncated file: {len(data)} bytes, the header announces {expected}")
    if len(data) > expected:
        raise BitstreamError(f"corrupt file: {len(data) - expected} unexpected bytes after the payload")
    payload = data[reader.pos:]
    if zlib.crc32(payload, zlib.crc32(data[:head_end])) != crc:
        raise BitstreamError("corrupt file: CRC-32 mismatch")
    header = Header(model, weights_hash, quality, width, height, pad_right, pad_bottom, flags, lengths, version)
    try:
        validate_header(header)
    except ValueError as err:
        raise BitstreamError(f"corrupt header: {err}") from None
    sections, pos = [], 0
    for length in lengths:
        sections.append(payload[pos:pos + length])
        pos += length
    return header, sections
