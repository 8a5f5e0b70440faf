"""Tests for parallel substreams: the split rule (codec.entropy.substreams) and
codec.entropy.rangecoder.encode_substreams / decode_substreams."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codec.entropy.substreams import SUBSTREAM_SYMBOLS, substream_count, substream_rows

rc = pytest.importorskip("codec.entropy.rangecoder", reason="codec._rangecoder not built (pip install -e .)")

from test_rangecoder import random_tables, sample  # noqa: E402

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------------
# split rule
# ----------------------------------------------------------------------------------
@given(st.integers(0, 300), st.integers(0, 300), st.integers(0, 600), st.integers(1, 200_000))
@settings(max_examples=300, deadline=None)
def test_substream_rows_rule(c, h, w, target):
    b = substream_rows(c, h, w, target)
    n, rows = c * h * w, c * h
    s = len(b) - 1
    assert b.dtype == np.int64 and b[0] == 0 and b[-1] == n
    assert s == substream_count(c, h, w, target) == max(1, min(rows, n // target))
    assert np.all(np.diff(b) >= 0)
    if w:
        assert np.all(b % w == 0)  # whole rows
        per = np.diff(b) // w
        assert per.max() - per.min() <= 1  # as equal as whole rows allow
        if s > 1:
            assert per.min() >= 1 and np.diff(b).min() > target - w
    np.testing.assert_array_equal(b, [(rows * j // s) * w for j in range(s + 1)])


def test_substream_rows_pinned():
    """The rule is part of the format: pinned on the shipped walloc's latent shapes."""
    assert SUBSTREAM_SYMBOLS == 65536
    assert substream_count(48, 270, 480) == 94  # 3840x2160
    np.testing.assert_array_equal(substream_rows(48, 64, 96), [0, 73728, 147456, 221184, 294912])  # Kodak 768x512
    np.testing.assert_array_equal(substream_rows(48, 8, 12), [0, 4608])  # small image: one substream
    np.testing.assert_array_equal(substream_rows(2, 3, 5, 5), np.arange(7) * 5)  # at most one substream per row
    np.testing.assert_array_equal(substream_rows(0, 4, 4), [0, 0])


@pytest.mark.parametrize("args,exc", [((-1, 2, 3), ValueError), ((1, 2, 3, 0), ValueError), ((1.5, 2, 3), TypeError),
                                      ((2**31, 2**31, 2), ValueError)])
def test_substream_rows_errors(args, exc):
    with pytest.raises(exc):
        substream_rows(*args)


# ----------------------------------------------------------------------------------
# coding
# ----------------------------------------------------------------------------------
def _case(seed: int, n: int, n_tables: int = 8, max_len: int = 60):
    rng = np.random.default_rng(seed)
    cdfs, lengths, offsets = random_tables(rng, n_tables, max_len)
    idx = rng.integers(0, n_tables, n).astype(np.int32)
    return rng, (sample(rng, cdfs, lengths, offsets, idx), idx, cdfs, lengths, offsets)


def _random_bounds(rng, n: int, n_sub: int) -> np.ndarray:
    inner = np.sort(rng.integers(0, n + 1, n_sub - 1))
    return np.concatenate([[0], inner, [n]]).astype(np.int64)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 3000), n_sub=st.integers(1, 40), threads=st.integers(1, 9))
@FAST
def test_roundtrip_random_splits(seed, n, n_sub, threads):
    rng, (sym, idx, cdfs, lengths, offsets) = _case(seed, n)
    bounds = _random_bounds(rng, n, n_sub)
    strings = rc.encode_substreams(sym, idx, cdfs, lengths, offsets, bounds, threads=threads)
    assert len(strings) == n_sub and all(isinstance(s, bytes) for s in strings)
    for j, s in enumerate(strings):  # each substream is the one-stream encoding of its slice
        a, b = bounds[j], bounds[j + 1]
        assert s == rc.encode(sym[a:b], idx[a:b], cdfs, lengths, offsets)
    out = rc.decode_substreams(strings, idx, cdfs, lengths, offsets, bounds, threads=threads)
    assert out.dtype == np.int32 and out.shape == (n,)
    np.testing.assert_array_equal(out, sym)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 5000))
@FAST
def test_one_substream_is_encode(seed, n):
    _, (sym, idx, cdfs, lengths, offsets) = _case(seed, n)
    for threads in (1, 2, 4):
        (data,) = rc.encode_substreams(sym, idx, cdfs, lengths, offsets, [0, n], threads=threads)
        assert data == rc.encode(sym, idx, cdfs, lengths, offsets)
        np.testing.assert_array_equal(rc.decode_substreams([data], idx, cdfs, lengths, offsets, [0, n], threads=threads), sym)


def test_bytes_do_not_depend_on_thread_count():
    _, (sym, idx, cdfs, lengths, offsets) = _case(1, 48 * 20 * 60, n_tables=64, max_len=120)
    bounds = substream_rows(48, 20, 60, 2000)
    ref = rc.encode_substreams(sym, idx, cdfs, lengths, offsets, bounds, threads=1)
    assert len(ref) == 28
    for threads in (2, 3, 7, 28, 100, rc.MAX_THREADS):
        assert rc.encode_substreams(sym, idx, cdfs, lengths, offsets, bounds, threads=threads) == ref
        np.testing.assert_array_equal(rc.decode_substreams(ref, idx, cdfs, lengths, offsets, bounds, threads=threads), sym)


def test_concurrent_calls():
    """Several Python threads, each coding on several threads (the GIL is released)."""
    _, (sym, idx, cdfs, lengths, offsets) = _case(2, 200_000)
    bounds = substream_rows(10, 100, 200, 5000)
    ref = rc.encode_substreams(sym, idx, cdfs, lengths, offsets, bounds)
    with ThreadPoolExecutor(4) as pool:
        enc = list(pool.map(lambda t: rc.encode_substreams(sym, idx, cdfs, lengths, offsets, bounds, threads=t), [1, 2, 3, 4] * 2))
        dec = list(pool.map(lambda t: rc.decode_substreams(ref, idx, cdfs, lengths, offsets, bounds, threads=t), [1, 2, 3, 4] * 2))
    assert all(e == ref for e in enc)
    for d in dec:
        np.testing.assert_array_equal(d, sym)


def test_accepted_argument_types():
    _, (sym, idx, cdfs, lengths, offsets) = _case(3, 100)
    ref = rc.encode_substreams(sym, idx, cdfs, lengths, offsets, np.array([0, 40, 100]))
    for bounds in ([0, 40, 100], (0, 40, 100), np.array([0, 40, 100], np.int32), np.array([0, 40, 100], np.uint64)):
        assert rc.encode_substreams(sym, idx, cdfs, lengths, offsets, bounds, threads=np.int64(2)) == ref
    strings = (bytearray(ref[0]), memoryview(ref[1]))
    np.testing.assert_array_equal(rc.decode_substreams(strings, idx, cdfs, lengths, offsets, [0, 40, 100]), sym)
    padded = memoryview(b"".join(bytes([b, 0]) for b in ref[1]))[::2]  # not contiguous
    np.testing.assert_array_equal(rc.decode_substreams([ref[0], padded], idx, cdfs, lengths, offsets, [0, 40, 100]), sym)


# ----------------------------------------------------------------------------------
# refused input
# ----------------------------------------------------------------------------------
N = 100


@pytest.mark.parametrize(
    "bounds,threads,exc,match",
    [
        ([0, 50, 40, N], 1, ValueError, r"bounds\[2\] = 40 < bounds\[1\] = 50"),
        ([1, N], 1, ValueError, r"bounds\[0\] = 1"),
        ([0, 50], 1, ValueError, "last bound must be the number of values, 100"),
        ([0, N + 1], 1, ValueError, "last bound"),
        ([0, -5, N], 1, ValueError, "non-decreasing"),
        ([0], 1, ValueError, "at least 2 entries"),
        ([], 1, ValueError, "at least 2 entries"),
        ([[0, N]], 1, ValueError, "1-D"),
        ([0.0, 100.0], 1, TypeError, "bounds"),
        (np.array([0, 2**64 - 1], np.uint64), 1, ValueError, "int64"),
        ([0, N], 0, ValueError, r"threads = 0 is invalid"),
        ([0, N], -3, ValueError, "threads"),
        ([0, N], rc.MAX_THREADS + 1, ValueError, "threads = 257"),
        ([0, N], 2**80, ValueError, "threads"),
        ([0, N], 1.5, TypeError, "integer"),
    ],
)
def test_bad_bounds_and_threads(bounds, threads, exc, match):
    _, (sym, idx, cdfs, lengths, offsets) = _case(4, N)
    good = rc.encode_substreams(sym, idx, cdfs, lengths, offsets, [0, N])
    with pytest.raises(exc, match=match):
        rc.encode_substreams(sym, idx, cdfs, lengths, offsets, bounds, threads=threads)
    with pytest.raises(exc, match=match):
        rc.decode_substreams(good * max(1, len(np.asarray(bounds).reshape(-1)) - 1), idx, cdfs, lengths, offsets, bounds,
                             threads=threads)


def test_bad_strings_and_tables():
    _, (sym, idx, cdfs, lengths, offsets) = _case(5, N)
    bounds = [0, 30, N]
    strings = rc.encode_substreams(sym, idx, cdfs, lengths, offsets, bounds)
    with pytest.raises(ValueError, match="got 1 substreams but bounds describe 2"):
        rc.decode_substreams(strings[:1], idx, cdfs, lengths, offsets, bounds)
    with pytest.raises(ValueError, match="got 3 substreams"):
        rc.decode_substreams(strings + [b""], idx, cdfs, lengths, offsets, bounds)
    for not_a_list in (strings[0], b"".join(strings), "ab", 5, iter(strings)):
        with pytest.raises(TypeError, match="list of byte strings"):
            rc.decode_substreams(not_a_list, idx, cdfs, lengths, offsets, bounds)
    with pytest.raises(TypeError, match=r"strings\[1\]"):
        rc.decode_substreams([strings[0], "text"], idx, cdfs, lengths, offsets, bounds)
    bad_idx = idx.copy()
    bad_idx[70] = len(lengths)
    with pytest.raises(ValueError, match=r"indexes\[70\]"):
        rc.encode_substreams(sym, bad_idx, cdfs, lengths, offsets, bounds, threads=2)
    with pytest.raises(ValueError, match=r"indexes\[70\]"):
        rc.decode_substreams(strings, bad_idx, cdfs, lengths, offsets, bounds, threads=2)
    # A bad index is what is reported, even behind a corrupt lower substream.
    for threads in (1, 2):
        with pytest.raises(ValueError, match=r"^indexes\[70\] = \d+ is out of range"):
            rc.decode_substreams([b"", strings[1]], bad_idx, cdfs, lengths, offsets, bounds, threads=threads)
    bad_cdfs = cdfs.copy()
    bad_cdfs[0, 0] = 1
    with pytest.raises(ValueError, match=r"cdfs\[0\]\[0\]"):
        rc.encode_substreams(sym, idx, bad_cdfs, lengths, offsets, bounds)
    with pytest.raises(ValueError, match="same length"):
        rc.encode_substreams(sym[:-1], idx, cdfs, lengths, offsets, bounds)


def test_raw_extension_checks():
    from codec import _rangecoder as ext

    _, (sym, idx, cdfs, lengths, offsets) = _case(6, N)
    b64 = np.array([0, N], np.int64)
    tables = ext.Tables(cdfs, lengths, offsets)
    with pytest.raises(TypeError, match="bounds must have dtype int64"):
        ext.encode_substreams(sym, idx, tables, b64.astype(np.int32), 1)
    with pytest.raises(TypeError, match="bounds must be a numpy int64 array"):
        ext.encode_substreams(sym, idx, tables, [0, N], 1)
    with pytest.raises(TypeError, match="byte order"):
        ext.encode_substreams(sym, idx, tables, b64.astype(">i8"), 1)
    with pytest.raises(ValueError, match="contiguous"):
        ext.encode_substreams(sym, idx, tables, np.array([0, 7, N, 9], np.int64)[::2], 1)
    with pytest.raises(TypeError, match="threads must be an int"):
        ext.encode_substreams(sym, idx, tables, b64, True)
    with pytest.raises(TypeError, match="list of byte strings"):
        ext.decode_substreams(bytearray(b"ab"), idx, tables, b64, 1)


# ----------------------------------------------------------------------------------
# corrupt substreams
# ----------------------------------------------------------------------------------
def test_corrupt_substream_is_named():
    _, (sym, idx, cdfs, lengths, offsets) = _case(7, 40_000)
    bounds = substream_rows(4, 100, 100, 5000)
    strings = rc.encode_substreams(sym, idx, cdfs, lengths, offsets, bounds)
    assert len(strings) == 8
    for j in (0, 3, 7):
        for bad in (strings[j][: len(strings[j]) // 2], b""):
            damaged = list(strings)
            damaged[j] = bad
            for threads in (1, 2, 8):
                with pytest.raises(ValueError, match=rf"^substream {j}: elements {bounds[j]}\.\.{bounds[j + 1]}: (truncated|corrupt)"):
                    rc.decode_substreams(damaged, idx, cdfs, lengths, offsets, bounds, threads=threads)
    # Two damaged substreams: the lower one is reported, whatever the thread count.
    damaged = list(strings)
    damaged[2], damaged[6] = b"", b""
    for threads in (1, 2, 8):
        with pytest.raises(ValueError, match="^substream 2: "):
            rc.decode_substreams(damaged, idx, cdfs, lengths, offsets, bounds, threads=threads)


def test_mutated_substreams_never_crash():
    rng = np.random.default_rng(8)
    raised = total = 0
    for _ in range(60):
        n = int(rng.integers(1, 2000))
        _, (sym, idx, cdfs, lengths, offsets) = _case(int(rng.integers(2**31)), n, max_len=int(rng.integers(2, 80)))
        bounds = _random_bounds(rng, n, int(rng.integers(1, 12)))
        strings = rc.encode_substreams(sym, idx, cdfs, lengths, offsets, bounds, threads=2)
        for _ in range(10):
            damaged = list(strings)
            j = int(rng.integers(len(damaged)))
            b = bytearray(damaged[j])
            kind = rng.integers(3)
            if kind == 0 and b:
                b[int(rng.integers(len(b)))] ^= 1 << int(rng.integers(8))
            elif kind == 1:
                b = b[: int(rng.integers(len(b) + 1))]
            else:
                b = bytearray(rng.bytes(int(rng.integers(0, 40))))
            damaged[j] = bytes(b)
            total += 1
            try:
                out = rc.decode_substreams(damaged, idx, cdfs, lengths, offsets, bounds, threads=int(rng.integers(1, 4)))
            except ValueError as e:
                raised += 1
                assert str(e).startswith(f"substream {j}: ")
            else:
                assert out.shape == (n,) and out.dtype == np.int32
                keep = np.ones(n, bool)
                keep[bounds[j]:bounds[j + 1]] = False
                np.testing.assert_array_equal(out[keep], sym[keep])  # other substreams are unaffected
    assert total == 600 and raised > 0


# ----------------------------------------------------------------------------------
# interpreter shutdown
# ----------------------------------------------------------------------------------
_CODING_AT_EXIT = """
import threading, time
import numpy as np
from codec import _rangecoder as rc
edges = np.round(np.linspace(0, 65536, 258)).astype(np.int32)[None, :]
tables = rc.Tables(edges, np.array([258], np.int32), np.array([0], np.int32))
n = 2_000_000
symbols = np.random.default_rng(0).integers(0, 256, n).astype(np.int32)
indexes = np.zeros(n, np.int32)
bounds = np.array([0, n // 2, n], np.int64)
started = threading.Event()
def code_forever():
    data = rc.encode(symbols, indexes, tables)
    parts = rc.encode_substreams(symbols, indexes, tables, bounds, 2)
    while True:
        started.set()
        rc.encode(symbols, indexes, tables)
        rc.decode(data, indexes, tables)
        rc.encode_substreams(symbols, indexes, tables, bounds, 2)
        rc.decode_substreams(parts, indexes, tables, bounds, 2)
threading.Thread(target=code_forever, daemon=True).start()
started.wait()
time.sleep(0.02)
"""


def test_daemon_thread_coding_at_interpreter_exit():
    """A daemon thread still coding when the interpreter exits is ended quietly: taking the
    GIL back must not abort the process (it did with a GIL guard's destructor: gil.hpp)."""
    import subprocess
    import sys

    for _ in range(5):  # each run caught the abort about two times in three before the fix
        run = subprocess.run([sys.executable, "-c", _CODING_AT_EXIT], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-500:]
