"""Coder backends, chosen by name and recorded in every file by their id.

A backend turns integer symbols, their table indexes and :class:`~codec.entropy.tables.EntropyTables`
into bytes and back, as one stream or as independent substreams (consecutive slices of the
values, ``bounds`` from :mod:`codec.entropy.substreams`). ``cpu`` is our C++ range coder
(:mod:`codec.entropy.rangecoder`, docs/rangecoder.md), which codes substreams on several
threads (:func:`coder_threads`); ``cuda`` (:mod:`codec.entropy.cuda_coder`) codes the same
substreams on a GPU and writes the same bytes, so it records ``cpu``'s id (its ``writes = "cpu"``)
and either decodes the other's files. A backend that writes other bytes gets a new id in the
format's table (:data:`codec.bitstream.CODERS`) and registers under that name with
:func:`register_coder`, so a decoder always knows which coder wrote a file.
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from codec import bitstream
from codec.entropy.tables import EntropyTables

#: The coder new files are written with.
DEFAULT_CODER = "cpu"
#: Most threads the ``cpu`` backend codes one latent's substreams on. The bytes never depend
#: on the thread count; this only bounds how many cores one call takes.
MAX_CODER_THREADS = 4


def coder_threads(substreams: int) -> int:
    """Threads for coding ``substreams`` substreams: ``min(os.cpu_count(), substreams, MAX_CODER_THREADS)``, at least 1."""
    return max(1, min(os.cpu_count() or 1, substreams, MAX_CODER_THREADS))


class Coder(Protocol):
    """What a coder backend provides."""

    #: Name users choose it by, printable ASCII.
    name: str
    #: Its id in a file's header (0..255), never reused for other bytes.
    id: int

    def encode(self, symbols: np.ndarray, indexes: np.ndarray, tables: EntropyTables) -> bytes:
        """Code 1-D int32 ``symbols[k]`` with table ``indexes[k]``."""
        ...

    def decode(self, data: bytes, indexes: np.ndarray, tables: EntropyTables) -> np.ndarray:
        """Decode ``len(indexes)`` int32 values; ValueError for corrupt or truncated data."""
        ...

    def encode_substreams(self, symbols: np.ndarray, indexes: np.ndarray, tables: EntropyTables,
                          bounds: np.ndarray, threads: int | None = None) -> list[bytes]:
        """Code ``symbols[bounds[j]:bounds[j+1]]`` as substream ``j``, each one what :meth:`encode`
        writes for its slice; ``threads`` (None: :func:`coder_threads`) never changes the bytes."""
        ...

    def decode_substreams(self, strings: Sequence[bytes], indexes: np.ndarray, tables: EntropyTables,
                          bounds: np.ndarray, threads: int | None = None) -> np.ndarray:
        """Decode what :meth:`encode_substreams` wrote: ``len(indexes)`` int32 values; ValueError
        naming the lowest-numbered corrupt substream, or if ``len(strings) != len(bounds) - 1``."""
        ...


_BY_NAME: dict[str, Coder] = {}


def register_coder(cls: type) -> type:
    """Class decorator: register an instance of a backend under its ``name`` and ``id``. The id
    must be the format's id of ``name``, or of ``writes`` for a backend that writes another
    coder's bytes exactly (``cuda``: ``writes = "cpu"``)."""
    coder = cls()
    if coder.name in _BY_NAME or bitstream.CODERS.get(coder.id) != getattr(coder, "writes", coder.name):
        raise ValueError(f"coder {coder.name!r} (id {coder.id}) clashes with a registered one "
                         "or is not the format's coder of that id")
    _BY_NAME[coder.name] = coder
    return cls


def get_coder(name: str) -> Coder:
    """The backend registered as ``name``; ValueError listing the known ones otherwise."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown coder {name!r}; known: {', '.join(sorted(_BY_NAME))}") from None


def coder_name(coder_id: int) -> str | None:
    """Name of the registered backend with id ``coder_id``, None if none has it."""
    name = bitstream.CODERS.get(coder_id)
    return name if name in _BY_NAME else None


def _rangecoder():
    from codec.entropy import rangecoder  # compiled extension, needed only for real coding

    return rangecoder


@register_coder
class CpuRangeCoder:
    """Our C++ multi-symbol range coder on the CPU (GIL released while coding; substreams on
    several threads). Each :class:`EntropyTables` gets its C++ ``rangecoder.Tables`` once, on
    first use (:meth:`tables`), so a call converts and checks no table."""

    name = "cpu"
    id = bitstream.coder_id("cpu")

    def tables(self, tables: EntropyTables):
        """The C++ :class:`codec.entropy.rangecoder.Tables` of ``tables``, built once and kept with them."""
        rangecoder = _rangecoder()
        return tables.prepared(self.name, lambda t: rangecoder.Tables(t.cdfs, t.cdf_lengths, t.offsets))

    def encode(self, symbols: np.ndarray, indexes: np.ndarray, tables: EntropyTables) -> bytes:
        return _rangecoder().encode_with(symbols, indexes, self.tables(tables))

    def decode(self, data: bytes, indexes: np.ndarray, tables: EntropyTables) -> np.ndarray:
        return _rangecoder().decode_with(data, indexes, self.tables(tables))

    def encode_substreams(self, symbols: np.ndarray, indexes: np.ndarray, tables: EntropyTables,
                          bounds: np.ndarray, threads: int | None = None) -> list[bytes]:
        threads = coder_threads(len(bounds) - 1) if threads is None else threads
        return _rangecoder().encode_substreams_with(symbols, indexes, self.tables(tables), bounds, threads)

    def decode_substreams(self, strings: Sequence[bytes], indexes: np.ndarray, tables: EntropyTables,
                          bounds: np.ndarray, threads: int | None = None) -> np.ndarray:
        threads = coder_threads(len(bounds) - 1) if threads is None else threads
        return _rangecoder().decode_substreams_with(strings, indexes, self.tables(tables), bounds, threads)


importlib.import_module("codec.entropy.cuda_coder")  # registers "cuda" (imports nothing compiled)
