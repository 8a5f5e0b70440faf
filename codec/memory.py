"""Giving the C heap's free memory back to the system between the bands of a large image.

torch allocates its CPU tensors with ``malloc``. glibc serves blocks up to its (dynamic, at
most 32 MB) mmap threshold from heaps that it keeps once freed, for reuse; the bands of a
large image allocate and free hundreds of MB of such blocks in ever different sizes, so the
freed memory is scattered in holes the next band cannot always reuse and the resident
memory creeps up band after band (docs/large-images.md measured 0.2-0.3 GB of it at 24 MP).
:func:`trim` returns the free pages (``malloc_trim``) at band boundaries: the pages a band
needs are then faulted in again, a few ms per band, instead of held for the whole run.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable
from functools import cache


#: glibc's ``mallopt`` parameter number of the mmap threshold.
_M_MMAP_THRESHOLD = -3
#: Blocks of at least this many bytes are mapped on their own, and unmapped when freed.
MMAP_THRESHOLD = 4 << 20


@cache
def _libc_function(name: str):
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


@cache
def bound_heap() -> None:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD` for the rest of the process (once):
    the band-sized blocks (activations of MBs to tens of MBs) are then mapped on their own
    and given back when freed, instead of kept in heaps that fragment. glibc otherwise raises
    the threshold up to 32 MB as such blocks are freed. Measured at 24 MP: about 0.14 GB less
    peak memory for ``codec encode`` (docs/large-images.md)."""
    function = _libc_function("mallopt")
    if function is not None:
        function.argtypes, function.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        function(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def trim() -> None:
    """Return the C heap's free memory to the system where the C library can (glibc); else nothing."""
    function = _libc_function("malloc_trim")
    if function is not None:
        function.argtypes, function.restype = [ctypes.c_size_t], ctypes.c_int
        function(0)


def band_trimmer(threads: int) -> Callable[[], None]:
    """What a model coding an image in bands on ``threads`` threads calls at band boundaries.
    With one (``--threads 1``, the low-memory setting): the heap bound (:func:`bound_heap`)
    and :func:`trim`. With more, nothing: faulting the pages in again costs about a quarter
    more CPU at 24 MP (docs/large-images.md), which the faster setting does not pay."""
    if threads != 1:
        return lambda: None
    bound_heap()
    return trim
