"""Tests for rangecoder.Tables: the coder's tables converted and validated once per model, then
shared by coding calls and threads (codec.entropy.rangecoder, csrc/tables.hpp)."""
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

rc = pytest.importorskip("codec.entropy.rangecoder", reason="codec._rangecoder not built (pip install -e .)")

from codec.entropy import get_coder  # noqa: E402
from codec.entropy.substreams import substream_rows  # noqa: E402
from codec.entropy.tables import EntropyTables  # noqa: E402
from test_rangecoder import random_tables, sample  # noqa: E402

GOOD = dict(cdfs=np.array([[0, 20000, 65536, 0], [0, 1000, 30000, 65536]], np.int32),
            cdf_lengths=np.array([3, 4], np.int32), offsets=np.array([0, -1], np.int32))
BAD = [
    (dict(cdf_lengths=np.array([3], np.int32)), "cdf_lengths has 1 entries but cdfs has 2 rows"),
    (dict(offsets=np.array([0, 0, 0], np.int32)), "offsets has 3 entries but cdfs has 2 rows"),
    (dict(cdf_lengths=np.array([1, 4], np.int32)),
     r"cdf_lengths\[0\] = 1 is invalid: a CDF length must be in \[2, cdfs.shape\[1\] = 4\]"),
    (dict(cdf_lengths=np.array([3, 5], np.int32)), r"cdf_lengths\[1\] = 5 is invalid"),
    (dict(cdfs=np.array([[1, 20000, 65536, 0], [0, 1000, 30000, 65536]], np.int32)),
     r"cdfs\[0\]\[0\] = 1, a quantized CDF must start at 0"),
    (dict(cdfs=np.array([[0, 200, 1024, 0], [0, 1000, 30000, 65536]], np.int32)),
     r"cdfs\[0\]\[cdf_lengths\[0\] - 1\] = 1024, a quantized CDF must end at 65536 \(16-bit precision\)"),
    (dict(cdfs=np.array([[0, 20000, 65536, 0], [0, 1000, 1000, 65536]], np.int32)),
     r"cdfs\[1\] is not strictly increasing at entry 2 \(1000 -> 1000\): symbol 1 has zero frequency"),
    (dict(cdfs=np.zeros(4, np.int32)), "cdfs must be a 2-D array"),
    (dict(offsets=np.array([0, 2**33])), "offsets has values outside the int32 range"),
]


@pytest.mark.parametrize("change,message", BAD)
def test_bad_tables_are_refused_at_construction_with_the_array_api_message(change, message):
    args = {**GOOD, **change}
    with pytest.raises(ValueError, match=message) as built:
        rc.Tables(**args)
    symbols, indexes = np.array([0, 1, 2], np.int32), np.array([0, 1, 1], np.int32)
    with pytest.raises(ValueError) as called:
        rc.encode(symbols, indexes, **args)
    assert str(called.value) == str(built.value)


def test_tables_copy_the_arrays():
    cdfs = GOOD["cdfs"].copy()
    tables = rc.Tables(cdfs, GOOD["cdf_lengths"], GOOD["offsets"])
    symbols, indexes = np.array([0, 1, 2, 5, -3], np.int32), np.array([0, 1, 1, 0, 1], np.int32)
    data = rc.encode_with(symbols, indexes, tables)
    cdfs[1, 1] = 0  # invalid now, and other bytes if it were read
    assert rc.encode_with(symbols, indexes, tables) == data
    assert rc.decode_with(data, indexes, tables).tolist() == symbols.tolist()
    assert len(tables) == 2


def test_index_range_is_checked_per_call():
    tables = rc.Tables(**GOOD)
    symbols = np.array([0, 1, 2, 1], np.int32)
    for bad in (2, -1, 2**31 - 1):
        indexes = np.array([0, 1, bad, 1], np.int32)
        with pytest.raises(ValueError, match=rf"^indexes\[2\] = {bad} is out of range: there are 2 tables$"):
            rc.encode_with(symbols, indexes, tables)
        with pytest.raises(ValueError, match=rf"^indexes\[2\] = {bad} is out of range"):
            rc.decode_with(b"\x12\x34", indexes, tables)
        with pytest.raises(ValueError, match=rf"indexes\[2\] = {bad} is out of range"):
            rc.encode_substreams_with(symbols, indexes, tables, [0, 2, 4], threads=2)
        with pytest.raises(ValueError, match=rf"indexes\[2\] = {bad} is out of range"):
            rc.decode_substreams_with([b"", b""], indexes, tables, [0, 2, 4], threads=2)
    # The same object still codes afterwards.
    indexes = np.array([0, 1, 1, 1], np.int32)
    assert rc.decode_with(rc.encode_with(symbols, indexes, tables), indexes, tables).tolist() == symbols.tolist()
    with pytest.raises(ValueError, match="same length"):
        rc.encode_with(symbols[:3], indexes, tables)


def test_arguments_must_be_a_tables():
    symbols, indexes = np.array([0, 1], np.int32), np.array([0, 1], np.int32)
    arrays = (GOOD["cdfs"], GOOD["cdf_lengths"], GOOD["offsets"])
    with pytest.raises(TypeError, match="tables must be a rangecoder.Tables, got tuple"):
        rc.encode_with(symbols, indexes, arrays)
    with pytest.raises(TypeError, match="tables must be a rangecoder.Tables, got EntropyTables"):
        rc.decode_with(b"", indexes, EntropyTables.from_arrays(*arrays))
    with pytest.raises(TypeError, match="cdfs must be an integer array"):
        rc.Tables(GOOD["cdfs"].astype(float), GOOD["cdf_lengths"], GOOD["offsets"])


@pytest.mark.parametrize("seed", range(4))
def test_array_api_gives_the_same_bytes_as_a_tables(seed):
    rng = np.random.default_rng(seed)
    cdfs, lengths, offsets = random_tables(rng, 12, 70)
    indexes = rng.integers(0, 12, 30_000).astype(np.int32)
    symbols = sample(rng, cdfs, lengths, offsets, indexes)
    tables = rc.Tables(cdfs, lengths, offsets)
    data = rc.encode(symbols, indexes, cdfs, lengths, offsets)
    assert rc.encode_with(symbols, indexes, tables) == data
    assert np.array_equal(rc.decode(data, indexes, cdfs, lengths, offsets), symbols)
    assert np.array_equal(rc.decode_with(data, indexes, tables), symbols)
    bounds = substream_rows(3, 100, 100, 7_000)
    strings = rc.encode_substreams(symbols, indexes, cdfs, lengths, offsets, bounds, threads=2)
    assert rc.encode_substreams_with(symbols, indexes, tables, bounds, threads=3) == strings
    assert np.array_equal(rc.decode_substreams_with(strings, indexes, tables, bounds, threads=2), symbols)
    assert np.array_equal(rc.decode_substreams(strings, indexes, cdfs, lengths, offsets, bounds), symbols)


def test_one_tables_shared_by_threads_and_calls():
    """Many threads code with one Tables at once, from its first decode (lookup tables built
    concurrently) on: every result equals the sequential one."""
    rng = np.random.default_rng(7)
    cdfs, lengths, offsets = random_tables(rng, 40, 200)
    jobs = []
    for _ in range(24):
        indexes = rng.integers(0, 40, int(rng.integers(1, 5_000))).astype(np.int32)
        symbols = sample(rng, cdfs, lengths, offsets, indexes)
        jobs.append((symbols, indexes, rc.encode(symbols, indexes, cdfs, lengths, offsets)))
    tables = rc.Tables(cdfs, lengths, offsets)
    start = threading.Barrier(4)

    def work(k):
        if k < 4:
            start.wait()
        symbols, indexes, data = jobs[k % len(jobs)]
        out = rc.decode_with(data, indexes, tables)
        return rc.encode_with(symbols, indexes, tables) == data and np.array_equal(out, symbols)

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(4 * len(jobs))))


def test_coder_seam_builds_the_tables_once_per_model():
    cpu = get_coder("cpu")
    tables = EntropyTables.from_arrays(*GOOD.values())
    with ThreadPoolExecutor(4) as pool:
        built = list(pool.map(lambda _: cpu.tables(tables), range(16)))
    assert all(t is built[0] for t in built) and isinstance(built[0], rc.Tables)
    other = EntropyTables.from_arrays(*GOOD.values())
    assert cpu.tables(other) is not built[0]
    symbols, indexes = np.array([0, 1, -5, 7], np.int32), np.array([0, 1, 1, 0], np.int32)
    data = cpu.encode(symbols, indexes, tables)
    assert data == rc.encode(symbols, indexes, *GOOD.values())
    assert cpu.decode(data, indexes, tables).tolist() == symbols.tolist()
    assert cpu.tables(tables) is built[0]
