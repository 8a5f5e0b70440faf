"""Entropy tables in the form every coder backend takes: converted and validated once.

A table set is compressai's layout: ``cdfs[i, :cdf_lengths[i]]`` is the 16-bit quantized
CDF of table ``i`` (0 ... 65536, strictly increasing; its last symbol, ``cdf_lengths[i] - 2``,
is the escape) and ``offsets[i]`` is added to the symbols of table ``i``. Building an
:class:`EntropyTables` checks all of it and freezes the arrays, so coding calls need
neither conversion nor another check in Python; a coder backend's own form of the tables
(the ``cpu`` coder's C++ :class:`codec.entropy.rangecoder.Tables`) is built from them once,
on first use, and kept with them (:meth:`EntropyTables.prepared`).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

#: Bits of precision of the quantized CDFs: they end at 2**PRECISION.
PRECISION = 16


def _frozen_int32(values: Any, name: str, ndim: int) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an integer array, got dtype {array.dtype}")
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}")
    if array.size and (array.min() < -(2**31) or array.max() >= 2**31):
        raise ValueError(f"{name} has values outside the int32 range")
    array = np.ascontiguousarray(array, dtype=np.int32).copy()
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class EntropyTables:
    """Validated, read-only int32 ``cdfs`` [N, L], ``cdf_lengths`` [N] and ``offsets`` [N]."""

    cdfs: np.ndarray
    cdf_lengths: np.ndarray
    offsets: np.ndarray
    _prepared: dict = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def from_arrays(cls, cdfs: Any, cdf_lengths: Any, offsets: Any) -> EntropyTables:
        """Convert and check tables; ValueError naming the first fault."""
        tables = cls(_frozen_int32(cdfs, "cdfs", 2), _frozen_int32(np.reshape(cdf_lengths, -1), "cdf_lengths", 1),
                     _frozen_int32(np.reshape(offsets, -1), "offsets", 1))
        tables.validate()
        return tables

    def __len__(self) -> int:
        return self.cdfs.shape[0]

    def prepared(self, key: str, build: Callable[[EntropyTables], T]) -> T:
        """``build(self)``, built once per ``key`` (a backend's name) and kept: a coder backend's
        own form of these tables, so that coding calls with the same model neither convert nor
        check them again. Thread-safe: ``build`` runs once per key."""
        try:
            return self._prepared[key]
        except KeyError:
            pass
        with self._lock:
            if key not in self._prepared:
                self._prepared[key] = build(self)
            return self._prepared[key]

    def validate(self) -> None:
        """ValueError unless every table is a valid quantized CDF (the coders' preconditions)."""
        count, width = self.cdfs.shape
        if count == 0:
            raise ValueError("no tables: call update() on the entropy model first")
        if self.cdf_lengths.shape != (count,) or self.offsets.shape != (count,):
            raise ValueError(f"{count} CDFs but {self.cdf_lengths.size} lengths and {self.offsets.size} offsets")
        bad = np.flatnonzero((self.cdf_lengths < 2) | (self.cdf_lengths > width))
        if bad.size:
            raise ValueError(f"cdf_lengths[{bad[0]}] = {self.cdf_lengths[bad[0]]} is not in [2, {width}]")
        rows = np.arange(count)
        if np.any(self.cdfs[:, 0] != 0):
            raise ValueError(f"cdfs[{np.flatnonzero(self.cdfs[:, 0])[0]}] does not start at 0")
        ends = self.cdfs[rows, self.cdf_lengths - 1]
        if np.any(ends != 1 << PRECISION):
            raise ValueError(f"cdfs[{np.flatnonzero(ends != 1 << PRECISION)[0]}] does not end at {1 << PRECISION}")
        inside = np.arange(1, width)[None, :] < self.cdf_lengths[:, None]
        flat = (np.diff(self.cdfs.astype(np.int64), axis=1) <= 0) & inside
        if flat.any():
            row = np.flatnonzero(flat.any(axis=1))[0]
            raise ValueError(f"cdfs[{row}] is not strictly increasing: a symbol has zero frequency")
