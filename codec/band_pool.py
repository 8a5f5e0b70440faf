"""The bands of one image worked on by several CPU threads, with the results of one thread.

``walloc`` codes tall images a band of rows at a time (docs/large-images.md): its analysis
and synthesis transforms and its integer entropy parameters of one band do not depend on
another band's, so bands can run at once on threads (torch releases the GIL in its
kernels). Each thread runs with the intra-op thread count of the thread that made the pool
(one, :data:`codec.api.CPU_THREADS`, when called through the API) and without autograd, and
computes each band on tensors of the same shapes as the serial path: the bytes and pixels do
not depend on the number of threads (``tests/test_band_pool.py``). Each band in flight holds
its own activations, so memory grows with the threads: :func:`default_threads` caps them.
"""
from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch

#: Most threads :func:`default_threads` picks (each band in flight holds its activations:
#: a few hundred MB for a band 6,000 pixels wide).
MAX_THREADS = 2

#: Threads of the band pools made in this context; None: :func:`default_threads`.
_threads: ContextVar[int | None] = ContextVar("band_threads", default=None)


def default_threads() -> int:
    """The CPU cores this process may run on, at most :data:`MAX_THREADS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_THREADS))


def _checked(threads: int | None) -> int | None:
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    return threads


def set_band_threads(threads: int | None) -> None:
    """Band pools made from now on in this context use ``threads`` threads (None: the default)."""
    _threads.set(_checked(threads))


@contextmanager
def threads_for_bands(threads: int | None) -> Iterator[None]:
    """Band pools made inside use ``threads`` threads (None: :func:`default_threads`)."""
    token = _threads.set(_checked(threads))
    try:
        yield
    finally:
        _threads.reset(token)


def band_threads() -> int:
    """Threads of a band pool made now (:func:`threads_for_bands`, else :func:`default_threads`)."""
    return _threads.get() or default_threads()


@contextmanager
def band_pool() -> Iterator[ThreadPoolExecutor | None]:
    """A pool of :func:`band_threads` threads for the bands of one image, or None where one
    thread is wanted (the work is then done in the caller's thread). Shut down on leaving,
    pending work cancelled (an error or Ctrl-C waits only for the bands already running)."""
    threads = band_threads()
    if threads <= 1:
        yield None
        return
    pool = ThreadPoolExecutor(threads, thread_name_prefix="codec-band",
                              initializer=torch.set_num_threads, initargs=(torch.get_num_threads(),))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _without_autograd(work: Callable[..., Any], *args: Any) -> Any:
    with torch.inference_mode():
        return work(*args)


def submit(pool: ThreadPoolExecutor | None, work: Callable[..., Any], *args: Any) -> Future:
    """``work(*args)`` without autograd on ``pool``, or at once in this thread when it is None."""
    if pool is not None:
        return pool.submit(_without_autograd, work, *args)
    done: Future = Future()
    done.set_result(_without_autograd(work, *args))
    return done


def in_order(pool: ThreadPoolExecutor | None, work: Callable[..., Any], jobs: Iterable[tuple],
             in_flight: int | None = None) -> Iterator[Any]:
    """``work(*job)`` for each job of ``jobs``, in order, on ``pool``: while this thread waits
    for a job's result, at most ``in_flight`` (default :func:`band_threads`, at least 1) later
    jobs are submitted; the next job is taken from ``jobs`` (which may do work of its own in
    this thread) only as one finishes. Without a pool, one job at a time in this thread."""
    in_flight = (band_threads() if in_flight is None else max(1, in_flight)) if pool is not None else 0
    pending: deque[Future] = deque()
    for job in jobs:
        pending.append(submit(pool, work, *job))
        while len(pending) > in_flight:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


class Prefetcher:
    """``compute(start, stop)`` for the bands ``start:stop`` of ``rows`` rows cut every
    ``step`` rows, each asked for ``uses`` times (by several consumers) and the bands in
    about increasing order. Asking for a band starts the next ``ahead`` (default 1: the
    pool's other threads are busy with the transforms' bands, and each band computed ahead
    is memory held; docs/large-images.md) bands not asked for yet on ``pool``, so they are ready when asked
    for, then computes this one in the caller's thread unless it was started; a result is
    kept until its ``uses`` are over. Any other ``start:stop``, or a band asked for more
    often, is computed at once; without a pool, everything is computed when asked for."""

    def __init__(self, compute: Callable[[int, int], Any], rows: int, step: int,
                 pool: ThreadPoolExecutor | None, ahead: int | None = None, uses: int = 1) -> None:
        self.compute, self.rows, self.step, self.pool, self.uses = compute, rows, step, pool, uses
        self.ahead = 0 if pool is None else (1 if ahead is None else ahead)
        self.started: dict[int, Future] = {}  # band start -> its result, computed or on the way
        self.asked: dict[int, int] = {}  # band start -> times asked for

    def _band(self, start: int) -> tuple[int, int]:
        return start, min(self.rows, start + self.step)

    def __call__(self, start: int, stop: int) -> Any:
        if start % self.step or (start, stop) != self._band(start):
            return self.compute(start, stop)
        asked = self.asked[start] = self.asked.get(start, 0) + 1
        self._start_following(start)
        future = self.started.get(start)
        if future is None:
            future = submit(None, self.compute, start, stop)
            if asked < self.uses:
                self.started[start] = future
        elif asked >= self.uses:
            del self.started[start]
        return future.result()

    def _start_following(self, start: int) -> None:
        waiting = sum(1 for s in self.started if s not in self.asked)
        following = start + self.step
        while following < self.rows and waiting < self.ahead:
            if following not in self.asked and following not in self.started:
                self.started[following] = submit(self.pool, self.compute, *self._band(following))
                waiting += 1
            following += self.step
