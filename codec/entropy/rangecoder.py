"""Compiled multi-symbol range coder with compressai-style 16-bit quantized CDF tables.

Numpy API. Tables built once, then any number of calls (the fast path)::

    tables = Tables(cdfs, cdf_lengths, offsets)                   # converted and validated once
    data = encode_with(symbols, indexes, tables)                  # -> bytes
    values = decode_with(data, indexes, tables)                   # -> np.ndarray[int32]

    # The same values as independent substreams coded on several threads:
    strings = encode_substreams_with(symbols, indexes, tables, bounds, threads=2)  # -> list[bytes]
    values = decode_substreams_with(strings, indexes, tables, bounds, threads=2)

The same with the three table arrays in every call (each call builds a :class:`Tables`)::

    data = encode(symbols, indexes, cdfs, cdf_lengths, offsets)
    values = decode(data, indexes, cdfs, cdf_lengths, offsets)
    strings = encode_substreams(symbols, indexes, cdfs, cdf_lengths, offsets, bounds, threads=2)
    values = decode_substreams(strings, indexes, cdfs, cdf_lengths, offsets, bounds, threads=2)

``symbols`` and ``indexes`` are 1-D integer arrays of equal length, ``cdfs`` is a 2-D
array whose row ``i`` is a quantized CDF of ``cdf_lengths[i]`` entries (0 ... 65536,
strictly increasing; the last symbol, ``len - 2``, is the escape symbol) and
``offsets[i]`` is added to the symbols of table ``i``, exactly as in compressai
(``_quantized_cdf``, ``_cdf_length``, ``_offset``). Every int32 value round-trips:
values outside a table are escaped and written in bypass mode.

Substream ``j`` holds the values ``bounds[j] .. bounds[j+1]-1`` (``bounds`` starts at 0,
never decreases and ends at ``len(symbols)``; :func:`codec.entropy.substreams.substream_rows`
gives the project's split rule) and is exactly what :func:`encode` writes for that slice,
so one substream (``bounds = [0, n]``) is byte-identical to :func:`encode`, and the bytes
never depend on ``threads``.

See ``docs/rangecoder.md`` for the stream format.
"""
from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    from codec import _rangecoder as _ext
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError(
        "codec.entropy.rangecoder needs the compiled extension codec._rangecoder, which is not built. "
        "Build it with `pip install -e .` (or `python setup.py build_ext --inplace`) "
        f"from the repository root. (Original error: {exc})"
    ) from exc

__all__ = ["Tables", "encode_with", "decode_with", "encode_substreams_with", "decode_substreams_with",
           "encode", "decode", "encode_substreams", "decode_substreams", "PRECISION", "MAX_THREADS"]

PRECISION: int = _ext.PRECISION
#: The largest thread count the substream functions accept.
MAX_THREADS: int = _ext.MAX_THREADS
_I32 = np.dtype(np.int32)
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


def _as_int32(x: Any, name: str, ndim: int) -> np.ndarray:
    """``x`` as a C-contiguous int32 array; no copy when it already is one."""
    if type(x) is np.ndarray and x.dtype == _I32 and x.ndim == ndim and x.flags.c_contiguous:
        return x  # fast path
    a = np.asarray(x)
    if a.dtype.kind not in "iu":
        if a.size == 0 and a.dtype.kind == "f":  # np.asarray([]) is float64
            a = a.astype(np.int32)
        else:
            raise TypeError(f"{name} must be an integer array, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got ndim={a.ndim}")
    if a.dtype != _I32:
        if a.size and (a.dtype.itemsize > 4 or (a.dtype.kind == "u" and a.dtype.itemsize == 4)):
            lo, hi = int(a.min()), int(a.max())
            if lo < _I32_MIN or hi > _I32_MAX:
                raise ValueError(f"{name} has values outside the int32 range ({lo} .. {hi})")
        a = a.astype(np.int32)
    return np.ascontiguousarray(a)


def _as_bounds(bounds: Any) -> np.ndarray:
    """``bounds`` as a C-contiguous int64 array (integer dtypes only)."""
    if type(bounds) is np.ndarray and bounds.dtype == np.int64 and bounds.ndim == 1 and bounds.flags.c_contiguous:
        return bounds
    b = np.asarray(bounds)
    if b.size == 0 and b.dtype.kind == "f":  # np.asarray([]) is float64
        b = b.astype(np.int64)
    if b.dtype.kind not in "iu":
        raise TypeError(f"bounds must be an integer array, got dtype {b.dtype}")
    if b.ndim != 1:
        raise ValueError(f"bounds must be a 1-D array, got ndim={b.ndim}")
    if b.dtype == np.uint64 and b.size and int(b.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"bounds has values outside the int64 range (max {int(b.max())})")
    return np.ascontiguousarray(b, dtype=np.int64)


def _as_data(data: Any, name: str = "data") -> bytes | bytearray | memoryview:
    if isinstance(data, str) or not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name} must be bytes, bytearray or memoryview, got {type(data).__name__}")
    if isinstance(data, memoryview) and not data.c_contiguous:
        data = data.tobytes()
    return data


class Tables(_ext.Tables):
    """A table set converted and validated once, then shared by any number of coding calls.

    ``Tables(cdfs, cdf_lengths, offsets)`` converts the arrays as the coding functions
    convert theirs (integer array-likes; values outside int32 -> ``ValueError``, float
    arrays -> ``TypeError``), copies them into the C++ object and checks every table;
    ``ValueError`` names the first fault. The object is read-only afterwards: it can be
    used from several threads at once (the coding functions release the GIL), and the
    decoder's per-table lookup tables are built once, on first use, and kept with it.
    """

    def __init__(self, cdfs: Any, cdf_lengths: Any, offsets: Any) -> None:
        super().__init__(_as_int32(cdfs, "cdfs", 2), _as_int32(cdf_lengths, "cdf_lengths", 1),
                         _as_int32(offsets, "offsets", 1))


def _checked_tables(tables: Any) -> _ext.Tables:
    if not isinstance(tables, _ext.Tables):
        raise TypeError(f"tables must be a rangecoder.Tables, got {type(tables).__name__}")
    return tables


def _as_strings(strings: Any) -> list:
    if isinstance(strings, (str, bytes, bytearray, memoryview)) or not isinstance(strings, Sequence):
        raise TypeError(f"strings must be a list of byte strings (one per substream), got {type(strings).__name__}")
    return [_as_data(s, f"strings[{j}]") for j, s in enumerate(strings)]


def encode_with(symbols: Any, indexes: Any, tables: Tables) -> bytes:
    """Range-code ``symbols[k]`` with table ``indexes[k]`` of ``tables``; returns the stream as bytes."""
    return _ext.encode(_as_int32(symbols, "symbols", 1), _as_int32(indexes, "indexes", 1), _checked_tables(tables))


def decode_with(data: bytes | bytearray | memoryview, indexes: Any, tables: Tables) -> np.ndarray:
    """Decode ``len(indexes)`` values written by :func:`encode_with` with the same tables.

    Raises ``ValueError`` for corrupt or truncated data (never reads out of bounds).
    """
    return _ext.decode(_as_data(data), _as_int32(indexes, "indexes", 1), _checked_tables(tables))


def encode_substreams_with(symbols: Any, indexes: Any, tables: Tables, bounds: Any, threads: int = 1) -> list[bytes]:
    """Range-code ``symbols[bounds[j]:bounds[j+1]]`` as substream ``j``, on ``threads`` threads.

    Returns one byte string per substream (``len(bounds) - 1``), each equal to
    :func:`encode_with` of its slice. ``ValueError`` for bad bounds or ``threads`` outside
    ``[1, MAX_THREADS]``; at most one thread per substream is started.
    """
    return _ext.encode_substreams(_as_int32(symbols, "symbols", 1), _as_int32(indexes, "indexes", 1),
                                  _checked_tables(tables), _as_bounds(bounds), operator.index(threads))


def decode_substreams_with(strings: Sequence[bytes | bytearray | memoryview], indexes: Any, tables: Tables, bounds: Any,
                           threads: int = 1) -> np.ndarray:
    """Decode what :func:`encode_substreams_with` wrote: ``len(indexes)`` values, on ``threads`` threads.

    ``strings[j]`` fills ``values[bounds[j]:bounds[j+1]]``. Raises ``ValueError`` naming
    the lowest-numbered corrupt or truncated substream, or for bad bounds / threads / a
    wrong number of substreams (never reads out of bounds).
    """
    return _ext.decode_substreams(_as_strings(strings), _as_int32(indexes, "indexes", 1), _checked_tables(tables),
                                  _as_bounds(bounds), operator.index(threads))


# The same functions with the three table arrays in place of a Tables (one is built per call).
def encode(symbols: Any, indexes: Any, cdfs: Any, cdf_lengths: Any, offsets: Any) -> bytes:
    """:func:`encode_with` with ``Tables(cdfs, cdf_lengths, offsets)``."""
    symbols, indexes = _as_int32(symbols, "symbols", 1), _as_int32(indexes, "indexes", 1)
    return encode_with(symbols, indexes, Tables(cdfs, cdf_lengths, offsets))


def decode(data: bytes | bytearray | memoryview, indexes: Any, cdfs: Any, cdf_lengths: Any, offsets: Any) -> np.ndarray:
    """:func:`decode_with` with ``Tables(cdfs, cdf_lengths, offsets)``."""
    data, indexes = _as_data(data), _as_int32(indexes, "indexes", 1)
    return decode_with(data, indexes, Tables(cdfs, cdf_lengths, offsets))


def encode_substreams(symbols: Any, indexes: Any, cdfs: Any, cdf_lengths: Any, offsets: Any, bounds: Any,
                      threads: int = 1) -> list[bytes]:
    """:func:`encode_substreams_with` with ``Tables(cdfs, cdf_lengths, offsets)``."""
    symbols, indexes = _as_int32(symbols, "symbols", 1), _as_int32(indexes, "indexes", 1)
    return encode_substreams_with(symbols, indexes, Tables(cdfs, cdf_lengths, offsets), bounds, threads)


def decode_substreams(strings: Sequence[bytes | bytearray | memoryview], indexes: Any, cdfs: Any, cdf_lengths: Any,
                      offsets: Any, bounds: Any, threads: int = 1) -> np.ndarray:
    """:func:`decode_substreams_with` with ``Tables(cdfs, cdf_lengths, offsets)``."""
    strings, indexes = _as_strings(strings), _as_int32(indexes, "indexes", 1)
    return decode_substreams_with(strings, indexes, Tables(cdfs, cdf_lengths, offsets), bounds, threads)
