"""Tests of the coder core shared by the CPU and CUDA coders (csrc/cuda/coder_core.hpp), on the CPU.

``codec._rangecoder._core_*`` run exactly the functions the CUDA kernels run (count pass, write
pass into a compacted buffer, decode with the GPU's binary search), without validating the
tables first, with guard bytes after every output. They must write the CPU coder's bytes, decode
them, and turn every bad input into a status, never an access out of bounds (the guards here;
ASan over the same calls with tools/sanitize_coder.sh).
"""
from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

rc = pytest.importorskip("codec.entropy.rangecoder", reason="codec._rangecoder not built (pip install -e .)")
from codec import _rangecoder as ext  # noqa: E402
from test_rangecoder import random_tables  # noqa: E402

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
STATUS = {name: code for code, name in ext._CORE_STATUS.items()}
OK, OUTPUT_FULL, BAD_INDEX, BAD_CDF_LENGTH, BAD_TABLE = 0, 1, 2, 3, 4
TRUNCATED = 9


def random_case(seed: int, n: int | None = None):
    """Tables and values: in-table values, escapes either side, and int32 extremes."""
    rng = np.random.default_rng(seed)
    wide = seed % 4 == 0  # offsets anywhere in int32
    cdfs, lengths, offsets = random_tables(rng, int(rng.integers(1, 9)), int(rng.integers(2, 200)),
                                           offset_range=I32_MAX if wide else 50)
    n = int(rng.integers(0, 4000)) if n is None else n
    idx = rng.integers(0, len(lengths), n).astype(np.int32)
    inside = offsets[idx].astype(np.int64) + rng.integers(-6, lengths[idx].astype(np.int64) + 6)
    anywhere = rng.integers(I32_MIN, I32_MAX + 1, n, dtype=np.int64)
    extremes = rng.choice([I32_MIN, I32_MIN + 1, -1, 0, 1, I32_MAX - 1, I32_MAX], n)
    pick = rng.random(n)
    sym = np.where(pick < 0.8, inside, np.where(pick < 0.9, anywhere, extremes))
    return np.clip(sym, I32_MIN, I32_MAX).astype(np.int32), idx, cdfs, lengths, offsets


def core_encode(sym, idx, cdfs, lengths, offsets, capacity=None):
    capacity = len(sym) * ext._CORE_MAX_BYTES_PER_VALUE + 1 if capacity is None else capacity
    status, at, data, guard_ok = ext._core_encode(sym, idx, cdfs, lengths, offsets, capacity)
    assert guard_ok, "the core wrote past its capacity"
    return status, at, data


def core_decode(data, idx, cdfs, lengths, offsets):
    status, at, values, guard_ok = ext._core_decode(bytes(data), idx, cdfs, lengths, offsets)
    assert guard_ok, "the core wrote past the output"
    return status, at, values


# ----------------------------------------------------------------------------------
# byte identity and round trips
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(40))
def test_same_bytes_as_cpu_coder_and_round_trip(seed):
    sym, idx, cdfs, lengths, offsets = random_case(seed)
    expected = rc.encode(sym, idx, cdfs, lengths, offsets)
    status, at, data = core_encode(sym, idx, cdfs, lengths, offsets)
    assert (status, at) == (OK, -1)
    assert data == expected
    count = ext._core_encode(sym, idx, cdfs, lengths, offsets, 2**62, True)
    assert count[:3] == (OK, -1, len(expected))  # pass 1 counts exactly
    status, at, values = core_decode(data, idx, cdfs, lengths, offsets)
    assert (status, at) == (OK, -1)
    np.testing.assert_array_equal(values, sym)


def test_extreme_values_every_table_side():
    """INT32_MIN/MAX against offsets at both ends of int32: the escape arithmetic in int64."""
    rng = np.random.default_rng(7)
    cdfs, lengths, _ = random_tables(rng, 4, 30)
    offsets = np.array([I32_MIN, I32_MAX, 0, -1], np.int32)
    vals = np.array([I32_MIN, I32_MIN + 1, -1, 0, 1, I32_MAX - 1, I32_MAX], np.int32)
    sym = np.repeat(vals, 4)
    idx = np.tile(np.arange(4, dtype=np.int32), len(vals))
    status, _, data = core_encode(sym, idx, cdfs, lengths, offsets)
    assert status == OK and data == rc.encode(sym, idx, cdfs, lengths, offsets)
    np.testing.assert_array_equal(core_decode(data, idx, cdfs, lengths, offsets)[2], sym)


def test_empty_stream():
    cdfs, lengths, offsets = random_tables(np.random.default_rng(0), 2, 10)
    empty = np.zeros(0, np.int32)
    assert core_encode(empty, empty, cdfs, lengths, offsets, capacity=0) == (OK, -1, b"")
    status, _, values = core_decode(b"", empty, cdfs, lengths, offsets)
    assert status == OK and values.size == 0


@pytest.mark.parametrize("seed", range(12))
def test_substreams_two_passes_same_bytes(seed):
    """The kernels' scheme (count, scan, write into one buffer; decode per substream) gives
    encode_substreams' strings, empty substreams included, and decodes them."""
    rng = np.random.default_rng(1000 + seed)
    sym, idx, cdfs, lengths, offsets = random_case(seed, n=int(rng.integers(0, 5000)))
    n = len(sym)
    bounds = np.concatenate([[0], np.sort(rng.integers(0, n + 1, int(rng.integers(0, 10)))), [n]]).astype(np.int64)
    if seed % 3 == 0:  # repeated bounds: empty substreams
        bounds = np.sort(np.concatenate([bounds, bounds[1:2], [n]]))
    statuses, ats, strings = ext._core_encode_substreams(sym, idx, cdfs, lengths, offsets, bounds)
    assert statuses == [OK] * (len(bounds) - 1)
    assert strings == rc.encode_substreams(sym, idx, cdfs, lengths, offsets, bounds)
    statuses, ats, values = ext._core_decode_substreams(strings, idx, cdfs, lengths, offsets, bounds)
    assert statuses == [OK] * (len(bounds) - 1)
    np.testing.assert_array_equal(values, sym)


# ----------------------------------------------------------------------------------
# bounds: output capacity, truncated and corrupt data, bad tables and indexes
# ----------------------------------------------------------------------------------
def test_output_capacity_is_respected():
    sym, idx, cdfs, lengths, offsets = random_case(3, n=300)
    data = rc.encode(sym, idx, cdfs, lengths, offsets)
    for capacity in sorted({0, 1, 2, len(data) // 2, len(data) - 1}):
        status, _, partial = core_encode(sym, idx, cdfs, lengths, offsets, capacity)  # guards checked
        assert status == OUTPUT_FULL and len(partial) <= capacity
    assert core_encode(sym, idx, cdfs, lengths, offsets, len(data))[2] == data  # exactly enough


@pytest.mark.parametrize("seed", range(6))
def test_truncated_and_corrupt_streams_match_cpu_coder(seed):
    """Every prefix and many bit flips: the core (binary search) and the CPU coder (lookup
    tables) agree on failure and on the values; no write outside the output."""
    rng = np.random.default_rng(50 + seed)
    sym, idx, cdfs, lengths, offsets = random_case(seed, n=200)
    data = rc.encode(sym, idx, cdfs, lengths, offsets)
    streams = [data[:k] for k in range(len(data))]
    for _ in range(150):
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            if b:
                b[int(rng.integers(0, len(b)))] ^= 1 << int(rng.integers(0, 8))
        streams.append(bytes(b))
    streams += [bytes(rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8)) for _ in range(50)]
    failures = 0
    for s in streams:
        status, at, values = core_decode(s, idx, cdfs, lengths, offsets)
        try:
            expected = rc.decode(s, idx, cdfs, lengths, offsets)
        except ValueError as err:
            failures += 1
            assert status != OK
            assert f"symbol {at}" in str(err)  # the same value fails first
        else:
            assert status == OK
            np.testing.assert_array_equal(values, expected)
    assert failures > 0
    status, at, _ = core_decode(data[: len(data) // 3], idx, cdfs, lengths, offsets)
    assert status != OK


def test_truncation_reported_as_truncated():
    cdfs, lengths, offsets = random_tables(np.random.default_rng(2), 1, 3)
    idx = np.zeros(20000, np.int32)
    status, at, _ = core_decode(b"", idx, cdfs, lengths, offsets)  # all-zero code value
    assert status == TRUNCATED and 0 < at < len(idx)


def test_bad_indexes_and_tables_are_statuses():
    sym, idx, cdfs, lengths, offsets = random_case(5, n=50)
    for bad in (-1, len(lengths), I32_MAX, I32_MIN):
        i2 = idx.copy()
        i2[17] = bad
        assert core_encode(sym, i2, cdfs, lengths, offsets)[:2] == (BAD_INDEX, 17)
        status, at, _ = core_decode(rc.encode(sym, idx, cdfs, lengths, offsets), i2, cdfs, lengths, offsets)
        assert (status, at) == (BAD_INDEX, 17)
    for bad_len in (-5, 0, 1, cdfs.shape[1] + 1, I32_MAX):
        l2 = lengths.copy()
        l2[idx[0]] = bad_len
        assert core_encode(sym, idx, cdfs, l2, offsets)[:2] == (BAD_CDF_LENGTH, 0)
        assert core_decode(b"\x00" * 8, idx, cdfs, l2, offsets)[:2] == (BAD_CDF_LENGTH, 0)


def test_invalid_cdf_entries_never_break_bounds():
    """Tables the public API would refuse (zero frequencies, negative, above 65536, decreasing):
    the core reports BAD_TABLE or codes something, with no write out of bounds and no hang."""
    rng = np.random.default_rng(9)
    for trial in range(200):
        cdfs, lengths, offsets = random_tables(rng, 2, 12)
        row, col = int(rng.integers(0, 2)), int(rng.integers(0, 12))
        cdfs[row, col] = rng.choice([-1, 0, 65536, 65537, I32_MAX, I32_MIN, int(rng.integers(0, 65537))])
        n = int(rng.integers(1, 60))
        idx = rng.integers(0, 2, n).astype(np.int32)
        sym = (offsets[idx] + rng.integers(-3, 14, n)).astype(np.int32)
        status, at, data = core_encode(sym, idx, cdfs, lengths, offsets)
        assert status in (OK, BAD_TABLE)
        dstatus, _, _ = core_decode(data if status == OK else bytes(rng.integers(0, 256, 16, dtype=np.uint8)),
                                    idx, cdfs, lengths, offsets)
        assert dstatus in STATUS.values()


def test_corrupt_substream_is_reported_alone():
    sym, idx, cdfs, lengths, offsets = random_case(1, n=3000)
    bounds = np.array([0, 1000, 1000, 2000, 3000], np.int64)
    strings = rc.encode_substreams(sym, idx, cdfs, lengths, offsets, bounds)
    strings[3] = strings[3][: len(strings[3]) // 4]
    statuses, ats, values = ext._core_decode_substreams(strings, idx, cdfs, lengths, offsets, bounds)
    assert statuses[:3] == [OK, OK, OK] and statuses[3] != OK
    np.testing.assert_array_equal(values[:2000], sym[:2000])


def test_status_table():
    assert STATUS["ok"] == OK and STATUS["output buffer full"] == OUTPUT_FULL
    assert STATUS["truncated range-coded data"] == TRUNCATED
    assert len(STATUS) == 11


# ----------------------------------------------------------------------------------
# The CUDA module's argument checks (need no GPU: they run before any device work)
# ----------------------------------------------------------------------------------
def test_cuda_module_built_when_required():
    """CODEC_CUDA=1 (set by .ci/run where nvcc exists) means the CUDA module must have been built."""
    if os.environ.get("CODEC_CUDA") != "1":
        pytest.skip("CODEC_CUDA is not 1")
    importlib.import_module("codec._cuda_rangecoder")


def test_cuda_module_refuses_host_arrays():
    cuda = pytest.importorskip("codec._cuda_rangecoder", reason="codec._cuda_rangecoder not built (no CUDA toolkit)")
    assert cuda.device_count() >= 0  # never raises, also without a driver
    a = np.zeros(4, np.int32)
    with pytest.raises(TypeError, match="symbols must be on a CUDA device"):
        cuda.encode_substreams(a, a, np.zeros((1, 2), np.int32), a[:1], a[:1], np.array([0, 4], np.int64))
    with pytest.raises(TypeError, match="with __dlpack__"):
        cuda.encode_substreams([1, 2], a, None, None, None, np.array([0, 2], np.int64))
    with pytest.raises(TypeError, match="list of byte strings"):
        cuda.decode_substreams(b"abc", a, None, None, None, np.array([0, 4], np.int64), a)
