"""A streaming PNG writer: 8-bit RGB or grayscale rows in, a PNG file out, a band at a time.

``codec decode`` hands the decoder's rows to :class:`PngWriter` as the bands come out of the
synthesis, so the whole decoded image is never held (nor Pillow's 4-bytes-a-pixel copy of it
when it saves). The file is a plain non-interlaced PNG (IHDR, IDAT chunks of at most
:data:`IDAT_BYTES`, IEND); each row's filter is picked as libpng and Pillow pick it (the
least sum of the filtered bytes taken as signed values, over the five filters), computed
with numpy over many rows at once, and the data is compressed by zlib at Pillow's default
level (6). The pixels are those written; the bytes may differ from Pillow's.
"""
from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Largest IDAT chunk written (as Pillow's 64 KB blocks).
IDAT_BYTES = 1 << 16
#: Rows are filtered in batches of about this many bytes (a few MB of numpy temporaries).
BATCH_BYTES = 1 << 20
#: zlib level (Pillow's default for PNG).
LEVEL = 6


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The Paeth predictor of int16 arrays ``a`` (left), ``b`` (up), ``c`` (up-left), as uint8."""
    pa = np.abs(b - c)
    pb = np.abs(a - c)
    pc = np.abs(a + b - 2 * c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c)).astype(np.uint8)


def filter_rows(rows: np.ndarray, prior: np.ndarray, bpp: int) -> np.ndarray:
    """Filtered scanlines ``[n, 1 + L]`` (filter type byte first) of the uint8 rows ``[n, L]``,
    the row above the first being ``prior`` (zeros at the top of the image), each row with the
    filter of least sum of absolute signed bytes (the first such filter on a tie)."""
    n, length = rows.shape
    up = np.empty_like(rows)
    up[0] = prior
    up[1:] = rows[:-1]
    left = np.zeros_like(rows)
    left[:, bpp:] = rows[:, :-bpp]
    upleft = np.zeros_like(rows)
    upleft[:, bpp:] = up[:, :-bpp]
    a, b, c = (v.astype(np.int16) for v in (left, up, upleft))
    candidates = np.stack([
        rows,
        rows - left,
        rows - up,
        rows - ((a + b) >> 1).astype(np.uint8),
        rows - _paeth(a, b, c),
    ])  # [5, n, L] uint8, wrapping as PNG's arithmetic does
    del a, b, c, up, left, upleft
    cost = np.abs(candidates.view(np.int8).astype(np.int16)).sum(axis=2, dtype=np.int64)  # [5, n]
    choice = cost.argmin(axis=0)
    out = np.empty((n, 1 + length), np.uint8)
    out[:, 0] = choice
    out[:, 1:] = candidates[choice, np.arange(n)]
    return out


class PngWriter:
    """Writes a PNG of ``width`` x ``height`` 8-bit pixels (``channels`` 3: RGB, 1: grayscale)
    to the binary file ``file``, from consecutive bands of rows handed to :meth:`write`
    (uint8 ``[n, width, 3]`` or ``[n, width]``); :meth:`close` checks that every row came and
    ends the file (the caller closes ``file``)."""

    def __init__(self, file: BinaryIO, width: int, height: int, channels: int) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if not (1 <= width < 2**31 and 1 <= height < 2**31):
            raise ValueError(f"a PNG cannot be {width}x{height}")
        self.file, self.width, self.height, self.channels = file, width, height, channels
        self.rows = 0
        self.prior = np.zeros(width * channels, np.uint8)
        self.zlib = zlib.compressobj(LEVEL)
        self.pending = bytearray()
        file.write(SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8,
                                                           2 if channels == 3 else 0, 0, 0, 0)))

    def write(self, rows: np.ndarray) -> None:
        """Append the uint8 rows ``[n, width, channels]`` (or ``[n, width]`` for grayscale)."""
        rows = np.asarray(rows)
        shape = (self.width, self.channels) if self.channels == 3 else (self.width,)
        if rows.dtype != np.uint8 or rows.shape[1:] != shape:
            raise ValueError(f"rows of shape {rows.shape[1:]} and type {rows.dtype}: expected uint8 {shape}")
        if self.rows + len(rows) > self.height:
            raise ValueError(f"more than the {self.height} rows of the image")
        flat = rows.reshape(len(rows), -1)
        step = max(1, BATCH_BYTES // flat.shape[1])
        for start in range(0, len(flat), step):
            batch = flat[start:start + step]
            self.pending += self.zlib.compress(filter_rows(batch, self.prior, self.channels).tobytes())
            self.prior = batch[-1].copy()
            self._flush(IDAT_BYTES)
        self.rows += len(rows)

    def _flush(self, least: int) -> None:
        while len(self.pending) >= least and self.pending:
            data, self.pending = bytes(self.pending[:IDAT_BYTES]), self.pending[IDAT_BYTES:]
            self.file.write(_chunk(b"IDAT", data))

    def close(self) -> None:
        """Finish the file; ValueError if rows are missing."""
        if self.rows != self.height:
            raise ValueError(f"{self.rows} of the {self.height} rows were written")
        self.pending += self.zlib.flush()
        self._flush(1)
        self.file.write(_chunk(b"IEND", b""))


def write_png(path: str, pixels: np.ndarray) -> None:
    """Write the uint8 image ``[H, W, 3]`` or ``[H, W]`` to ``path`` (not atomically: for tests and tools)."""
    with open(path, "wb") as f:
        writer = PngWriter(f, pixels.shape[1], pixels.shape[0], 3 if pixels.ndim == 3 else 1)
        writer.write(pixels)
        writer.close()
