"""The container around the entropy-coded streams: header, named sections, substream table, CRC-32.

Version 2 layout (all integers little-endian; docs/bitstream.md has the full table)::

    magic         4 bytes  b"\\x89LIC"
    version       u8       FORMAT_VERSION (2)
    flags         u8       bit 0: the input was grayscale (decode returns mode "L");
                           bit 1: integer entropy parameters (version 2 only)
    name length   u8       n, 1..32
    model name    n bytes  printable ASCII
    weights hash  8 bytes  first 8 bytes of the SHA-256 of the weights file
    quality       f32
    width         u32      original image width  (1..MAX_SIDE)
    height        u32      original image height (1..MAX_SIDE)
    pad right     u16      columns added before coding (replicated edge)
    pad bottom    u16      rows added before coding
    coder         u8       id of the coder backend that wrote the streams (CODERS)
    sections      u8       number of sections, 1..MAX_SECTIONS
    per section:  name length u8, name (printable ASCII), rank u8, rank sizes (LEB128),
                  substream count (LEB128), the length of each substream (LEB128)
    crc32         u32      CRC-32 of every byte before this field and of the payload
    payload       every section's substreams, back to back, in table order

Version 1 files (two sections ``z`` and ``y`` of one stream each, no shapes, no coder id)
are still read. Parsing checks every field and raises :class:`codec.errors.BitstreamError`
with one clear message. This module imports neither torch nor numpy.
"""
from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

from codec.errors import BitstreamError

MAGIC = b"\x89LIC"
FORMAT_VERSION = 2
#: Versions this module reads.
READABLE_VERSIONS = (1, 2)
#: Largest side and pixel count a file may declare (bounds the decoder's memory). A side
#: must leave room for the padding to the models' stride in 16 bits; 2^28 pixels keep the
#: latents of the shipped models (0.75 values per pixel) under MAX_LATENT_VALUES.
MAX_SIDE = 65535
MAX_PIXELS = 1 << 28
MAX_NAME = 32
MAX_SECTIONS = 8
#: Bounds of a section: its name, the rank and sizes of its latent, its substreams.
MAX_SECTION_NAME = 16
MAX_RANK = 4
MAX_LATENT_VALUES = 1 << 28
MAX_SUBSTREAMS = 1 << 16
FLAG_GRAYSCALE = 1
#: The table indexes and means of ``y`` come from the exact integer form of the model's
#: hyper-synthesis (codec.latent_codecs.integer_parameters), not from its float one.
FLAG_INTEGER_PARAMETERS = 2
_KNOWN_FLAGS = FLAG_GRAYSCALE | FLAG_INTEGER_PARAMETERS
#: Coder ids a file may name -> the coder backend (codec.entropy.coders) that reads them.
CODERS = {0: "cpu"}
#: Names of the two sections of a version 1 file, in file order.
V1_SECTIONS = ("z", "y")


@dataclass
class Section:
    """One named payload section: a latent of ``shape`` (one image's), coded as ``substreams``.

    ``shape`` is empty in sections read from version 1 files, which did not record it.
    """

    name: str
    shape: tuple[int, ...]
    substreams: list[bytes]

    @property
    def payload(self) -> bytes:
        """The section's bytes: its substreams back to back."""
        return b"".join(self.substreams)


@dataclass
class Header:
    """Every header field of a coded image (the sections travel beside it)."""

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
    coder: int = 0

    @property
    def grayscale(self) -> bool:
        return bool(self.flags & FLAG_GRAYSCALE)

    @property
    def integer_parameters(self) -> bool:
        """Whether the file's entropy parameters come from the integer hyper-synthesis."""
        return bool(self.flags & FLAG_INTEGER_PARAMETERS)

    @property
    def coder_name(self) -> str:
        """Name of the coder backend the file names (``?`` for an unknown id)."""
        return CODERS.get(self.coder, "?")


def coder_id(name: str) -> int:
    """The id files record for the coder backend ``name``; ValueError if it has none."""
    for key, value in CODERS.items():
        if value == name:
            return key
    raise ValueError(f"coder {name!r} has no id in the format")


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
    if header.version < 2 and header.flags & FLAG_INTEGER_PARAMETERS:
        raise ValueError("integer entropy parameters need format version 2")
    if header.coder not in CODERS:
        raise ValueError(f"unknown coder id {header.coder}")


def validate_sections(sections: list[Section]) -> None:
    """Raise ValueError when sections cannot be written in a version 2 file."""
    if not 1 <= len(sections) <= MAX_SECTIONS:
        raise ValueError(f"need 1..{MAX_SECTIONS} sections, got {len(sections)}")
    if len({s.name for s in sections}) != len(sections):
        raise ValueError("section names must be unique")
    for s in sections:
        if not s.name or len(s.name) > MAX_SECTION_NAME or not _printable_ascii(s.name):
            raise ValueError(f"section name must be 1..{MAX_SECTION_NAME} printable ASCII characters, got {s.name!r}")
        if not 1 <= len(s.shape) <= MAX_RANK or min(s.shape) < 1 or math.prod(s.shape) > MAX_LATENT_VALUES:
            raise ValueError(f"section {s.name!r}: shape {s.shape} must have 1..{MAX_RANK} positive sizes "
                             f"and at most {MAX_LATENT_VALUES} values")
        if not 1 <= len(s.substreams) <= MAX_SUBSTREAMS:
            raise ValueError(f"section {s.name!r}: need 1..{MAX_SUBSTREAMS} substreams, got {len(s.substreams)}")


def pack(header: Header, sections: list[Section]) -> bytes:
    """Serialize a header and its sections into one version 2 file's bytes."""
    validate_header(header)
    validate_sections(sections)
    name = header.model.encode("ascii")
    head = bytearray(MAGIC)
    head += struct.pack("<BBB", FORMAT_VERSION, header.flags, len(name)) + name + header.weights_hash
    head += struct.pack("<fIIHHBB", header.quality, header.width, header.height,
                        header.pad_right, header.pad_bottom, header.coder, len(sections))
    for section in sections:
        section_name = section.name.encode("ascii")
        head += struct.pack("<B", len(section_name)) + section_name + struct.pack("<B", len(section.shape))
        head += b"".join(_leb128(n) for n in section.shape) + _leb128(len(section.substreams))
        head += b"".join(_leb128(len(s)) for s in section.substreams)
    payload = b"".join(section.payload for section in sections)
    crc = zlib.crc32(payload, zlib.crc32(head))
    return bytes(head) + struct.pack("<I", crc) + payload


class _Truncated(BitstreamError):
    """The data ends before a field the reader needs (a prefix of a file, or a truncated one)."""


class _Reader:
    """Bounds-checked reads; running past the end means a truncated file."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise _Truncated(f"truncated file: it ends inside the {what}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))

    def leb128(self, what: str) -> int:
        """An unsigned LEB128 value of at most 35 bits, in its shortest encoding."""
        value = 0
        for shift in range(0, 35, 7):
            (byte,) = self.take(1, what)
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if byte == 0 and shift:  # a trailing zero group: one value, several encodings
                    raise BitstreamError(f"corrupt file: {what} has an overlong encoding")
                return value
        raise BitstreamError(f"corrupt file: {what} is not a valid length")

    def name(self, limit: int, what: str) -> str:
        (length,) = self.unpack("<B", what)
        if not 1 <= length <= limit:
            raise BitstreamError(f"corrupt header: bad {what} length")
        raw = self.take(length, what)
        if not all(0x20 < b < 0x7F for b in raw):
            raise BitstreamError(f"corrupt header: {what} has non-printable characters")
        return raw.decode("ascii")


def _read_section_table(reader: _Reader, count: int) -> list[tuple[str, tuple[int, ...], list[int]]]:
    table = []
    for _ in range(count):
        name = reader.name(MAX_SECTION_NAME, "section name")
        (rank,) = reader.unpack("<B", "section table")
        if not 1 <= rank <= MAX_RANK:
            raise BitstreamError("corrupt header: bad latent rank")
        shape = tuple(reader.leb128("latent shape") for _ in range(rank))
        if min(shape) < 1 or math.prod(shape) > MAX_LATENT_VALUES:
            raise BitstreamError(f"corrupt header: latent shape {shape} out of range")
        substreams = reader.leb128("substream count")
        if not 1 <= substreams <= MAX_SUBSTREAMS:
            raise BitstreamError("corrupt header: bad substream count")
        table.append((name, shape, [reader.leb128("substream lengths") for _ in range(substreams)]))
    if len({name for name, _, _ in table}) != count:
        raise BitstreamError("corrupt header: two sections have the same name")
    return table


@dataclass
class _Head:
    """What precedes the payload: the fields, the section table, the CRC and where each ends."""

    version: int
    flags: int
    model: str
    weights_hash: bytes
    fields: tuple  # quality, width, height, pad_right, pad_bottom
    coder: int
    table: list[tuple[str, tuple[int, ...], list[int]]]
    crc: int
    head_end: int  # bytes before the CRC
    payload_start: int

    @property
    def file_length(self) -> int:
        """The length of the whole file, as the header announces it."""
        return self.payload_start + sum(sum(lengths) for _, _, lengths in self.table)


def _read_head(data: bytes) -> _Head:
    reader = _Reader(data)
    magic = reader.take(len(MAGIC), "magic number") if len(data) >= len(MAGIC) else data
    if magic != MAGIC[:len(magic)] or not magic:
        raise BitstreamError("not a codec file (wrong magic number)")
    if len(magic) < len(MAGIC):
        raise _Truncated("truncated file: it ends inside the magic number")
    (version,) = reader.unpack("<B", "header")
    if version not in READABLE_VERSIONS:
        raise BitstreamError(f"unsupported format version {version} (this codec reads versions "
                             f"{', '.join(map(str, READABLE_VERSIONS))})")
    (flags,) = reader.unpack("<B", "header")
    model = reader.name(MAX_NAME, "model name")
    weights_hash = reader.take(8, "weights hash")
    fields = reader.unpack("<fIIHH", "header")
    coder = reader.unpack("<B", "header")[0] if version >= 2 else coder_id("cpu")
    (count,) = reader.unpack("<B", "header")
    if not 1 <= count <= MAX_SECTIONS:
        raise BitstreamError("corrupt header: bad section count")
    if version == 1:
        lengths = [reader.leb128("section lengths") for _ in range(count)]
        names = V1_SECTIONS if count == len(V1_SECTIONS) else tuple(f"section{i + 1}" for i in range(count))
        table = [(name, (), [length]) for name, length in zip(names, lengths)]
    else:
        table = _read_section_table(reader, count)
    (crc,) = reader.unpack("<I", "CRC-32")
    return _Head(version, flags, model, weights_hash, fields, coder, table, crc, reader.pos - 4, reader.pos)


def announced_length(prefix: bytes) -> int | None:
    """The length of the whole file whose first bytes are ``prefix``, as its header announces
    it; None if ``prefix`` ends inside the header (read more). BitstreamError as soon as the
    prefix cannot start a codec file (a wrong magic number, an unknown version, a bad field)."""
    try:
        return _read_head(bytes(prefix)).file_length
    except _Truncated:
        return None


def unpack(data: bytes) -> tuple[Header, list[Section]]:
    """Parse and verify a file's bytes (version 1 or 2); returns its header and sections."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < len(MAGIC):
        raise BitstreamError("not a codec file (wrong magic number)")
    try:
        head = _read_head(data)
    except _Truncated as err:  # the public type, as for every other fault
        raise BitstreamError(str(err)) from None
    table, expected = head.table, head.file_length
    if len(data) < expected:
        raise BitstreamError(f"truncated file: {len(data)} bytes, the header announces {expected}")
    if len(data) > expected:
        raise BitstreamError(f"corrupt file: {len(data) - expected} unexpected bytes after the payload")
    payload = data[head.payload_start:]
    if zlib.crc32(payload, zlib.crc32(data[:head.head_end])) != head.crc:
        raise BitstreamError("corrupt file: CRC-32 mismatch")
    header = Header(head.model, head.weights_hash, *head.fields, head.flags,
                    [sum(lengths) for _, _, lengths in table], head.version, head.coder)
    try:
        validate_header(header)
    except ValueError as err:
        raise BitstreamError(f"corrupt header: {err}") from None
    sections, pos = [], 0
    for name, shape, lengths in table:
        substreams = []
        for length in lengths:
            substreams.append(payload[pos:pos + length])
            pos += length
        sections.append(Section(name, shape, substreams))
    return header, sections


#: Bytes read at a time while a file's header is parsed (doubled while it is not whole) and
#: while its payload is read (so a length announced by a corrupt header is never allocated).
READ_CHUNK = 1 << 16
MAX_READ_CHUNK = 1 << 26


def read(stream: BinaryIO, size: int | None = None) -> bytes:
    """A codec file's bytes from a binary stream, reading no more than its header announces
    (plus one byte, to notice extra ones): a huge or endless input that is not a codec file
    fails after its first bytes. ``size``, the stream's length if known, names the extra bytes.
    The bytes read are not yet verified: :func:`unpack` does that."""
    data = bytearray()
    want = READ_CHUNK
    while True:
        piece = stream.read(want - len(data))
        data += piece
        total = announced_length(data) if data else None
        if total is not None or not piece:
            break
        want *= 2
    if total is None:  # ended inside the header (or empty): unpack says which
        return bytes(data)
    while len(data) <= total:
        piece = stream.read(min(total + 1 - len(data), MAX_READ_CHUNK))
        if not piece:
            return bytes(data)
        data += piece
    extra = f"{size - total} " if size is not None and size > total else ""
    raise BitstreamError(f"corrupt file: {extra}unexpected bytes after the payload (the header announces {total})")
