"""Compiled multi-symbol range coder with compressai-style 16-bit quantized CDF tables.

Numpy API (the fast path)::

    data = encode(symbols, indexes, cdfs, cdf_lengths, offsets)   # -> bytes
    values = decode(data, indexes, cdfs, cdf_lengths, offsets)     # -> np.ndarray[int32]

``symbols`` and ``indexes`` are 1-D integer arrays of equal length, ``cdfs`` is a 2-D
array whose row ``i`` is a quantized CDF of ``cdf_lengths[i]`` entries (0 ... 65536,
strictly increasing; the last symbol, ``len - 2``, is the escape symbol) and
``offsets[i]`` is added to the symbols of table ``i``, exactly as in compressai
(``_quantized_cdf``, ``_cdf_length``, ``_offset``). Every int32 value round-trips:
values outside a table are escaped and written in bypass mode.

See ``docs/rangecoder.md`` for the stream format.
"""
from __future__ import annotations

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

__all__ = ["encode", "decode", "PRECISION"]

PRECISION: int = _ext.PRECISION
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


def encode(symbols: Any, indexes: Any, cdfs: Any, cdf_lengths: Any, offsets: Any) -> bytes:
    """Range-code ``symbols[k]`` with table ``indexes[k]``; returns the stream as bytes."""
    return _ext.encode(
        _as_int32(symbols, "symbols", 1),
        _as_int32(indexes, "indexes", 1),
        _as_int32(cdfs, "cdfs", 2),
        _as_int32(cdf_lengths, "cdf_lengths", 1),
        _as_int32(offsets, "offsets", 1),
    )


def decode(data: bytes | bytearray | memoryview, indexes: Any, cdfs: Any, cdf_lengths: Any, offsets: Any) -> np.ndarray:
    """Decode ``len(indexes)`` values written by :func:`encode` with the same tables.

    Raises ``ValueError`` for corrupt or truncated data (never reads out of bounds).
    """
    if isinstance(data, str) or not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, bytearray or memoryview, got {type(data).__name__}")
    if isinstance(data, memoryview) and not data.c_contiguous:
        data = data.tobytes()
    return _ext.decode(
        data,
        _as_int32(indexes, "indexes", 1),
        _as_int32(cdfs, "cdfs", 2),
        _as_int32(cdf_lengths, "cdf_lengths", 1),
        _as_int32(offsets, "offsets", 1),
    )
