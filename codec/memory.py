"""Giving the C heap's free memory back to the system between the bands of a large image.

torch allocates its CPU tensors with ``malloc``. glibc serves blocks up to its (dynamic, at
most 32 MB) mmap threshold from heaps that it keeps once freed, for reuse; the bands of a
large image allocate and free hundreds of MB of such blocks in ever different sizes, so the
freed memory is scattered in holes the next band cannot always reuse and the resident
memory creeps up band after band (docs/large-images.md measured 0.2-0.3 GB of it at 24 MP).
Each thread that allocates beside another also gets a heap of its own (an "arena"), whose
free memory the other threads cannot reuse: with two band threads that cost 0.15-0.3 GB more.
:func:`bound_heap` keeps one heap and maps the band-sized blocks on their own; :func:`trim`
returns the free pages (``malloc_trim``) at band boundaries: the pages a band needs are then
faulted in again, a few ms per band, instead of held for the whole run.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable
from functools import cache


#: glibc's ``mallopt`` parameter numbers of the mmap threshold and of the most arenas.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
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


def bound_heap(mmap_threshold: int = MMAP_THRESHOLD) -> None:
    """Fix glibc's mmap threshold at ``mmap_threshold`` bytes until the next call, so the
    band-sized blocks (activations of MBs to tens of MBs) are mapped on their own and given
    back when freed, instead of kept in heaps that fragment (glibc otherwise raises the
    threshold up to 32 MB as such blocks are freed); and (once) let threads made from now on
    share the one heap there is (glibc gives each thread that allocates beside another a heap
    of its own, up to 8 per core). Call it before the band threads start. Measured at 24 MP
    with two band threads: 1.07 -> 0.76-0.79 GB peak for ``codec encode`` (docs/large-images.md)."""
    function = _mallopt()
    if function is not None:
        function(_M_MMAP_THRESHOLD, mmap_threshold)


@cache
def _mallopt():
    """glibc's ``mallopt``, after limiting the heaps to one (once), or None."""
    function = _libc_function("mallopt")
    if function is not None:
        function.argtypes, function.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        function(_M_ARENA_MAX, 1)
    return function


def trim() -> None:
    """Return the C heap's free memory to the system where the C library can (glibc); else nothing."""
    function = _libc_function("malloc_trim")
    if function is not None:
        function.argtypes, function.restype = [ctypes.c_size_t], ctypes.c_int
        function(0)


def band_trimmer(mmap_threshold: int = MMAP_THRESHOLD) -> Callable[[], None]:
    """What a model coding an image in bands calls at band boundaries (:func:`trim`), after the
    heap bound (:func:`bound_heap`), on any number of band threads. Faulting the pages in again
    costs CPU (system time: about 4 s more than the 12 s of CPU of a 24 MP two-thread encode
    here), and the two threads' speed-up is kept (docs/large-images.md). ``mmap_threshold``:
    that of :func:`bound_heap`, for the model's kind of allocations."""
    bound_heap(mmap_threshold)
    return trim
