"""Tests for the compiled range coder (codec.entropy.rangecoder / codec._rangecoder)."""
from __future__ import annotations

import importlib
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

rc = pytest.importorskip("codec.entropy.rangecoder", reason="codec._rangecoder not built (pip install -e .)")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------
def random_tables(rng: np.random.Generator, n_tables: int, max_len: int, min_len: int = 2, offset_range: int = 50):
    """Random compressai-layout tables: padded 2-D cdfs, lengths, offsets."""
    lengths = rng.integers(min_len, max_len + 1, n_tables)
    cdfs = np.zeros((n_tables, max_len), np.int32)
    for i, length in enumerate(lengths):
        nsym = int(length) - 1
        p = rng.random(nsym) ** rng.uniform(0.5, 6) + 1e-12
        freq = np.maximum(1, np.floor(p / p.sum() * (65536 - nsym))).astype(np.int64)
        freq[np.argmax(freq)] += 65536 - freq.sum()
        cdfs[i, :length] = np.concatenate([[0], np.cumsum(freq)])
    offsets = rng.integers(-offset_range, offset_range + 1, n_tables).astype(np.int32)
    return cdfs, lengths.astype(np.int32), offsets


def sample(rng: np.random.Generator, cdfs, lengths, offsets, indexes, escapes: bool = True):
    """Values drawn from each table's distribution (escape symbol -> an out-of-table value)."""
    u = rng.integers(0, 65536, indexes.size)
    s = np.empty(indexes.size, np.int64)
    for t in np.unique(indexes):
        sel = indexes == t
        s[sel] = np.searchsorted(cdfs[t, : lengths[t]], u[sel], side="right") - 1
    last = lengths[indexes] - 2
    esc = s == last
    if escapes:
        far = rng.integers(1, 1000, indexes.size)
        s = np.where(esc, np.where(rng.random(indexes.size) < 0.5, -far, last + far - 1), s)
    else:
        s = np.where(esc, 0, s)
    return (s + offsets[indexes]).astype(np.int32)


def ideal_bits(symbols, indexes, cdfs, lengths, offsets) -> float:
    s = symbols.astype(np.int64) - offsets[indexes]
    assert np.all((s >= 0) & (s < lengths[indexes] - 2)), "no escapes expected"
    freq = cdfs[indexes, s + 1].astype(np.int64) - cdfs[indexes, s]
    return float(-np.log2(freq / 65536.0).sum())


def roundtrip(symbols, indexes, cdfs, lengths, offsets) -> bytes:
    data = rc.encode(symbols, indexes, cdfs, lengths, offsets)
    assert isinstance(data, bytes)
    out = rc.decode(data, indexes, cdfs, lengths, offsets)
    assert out.dtype == np.int32 and out.shape == (len(indexes),)
    np.testing.assert_array_equal(out, np.asarray(symbols))
    return data


def uniform_table(nsym: int):
    """Table of nsym direct symbols + escape, near-uniform frequencies."""
    length = nsym + 2
    edges = np.round(np.linspace(0, 65536, length)).astype(np.int32)
    return edges[None, :], np.array([length], np.int32)


# ----------------------------------------------------------------------------------
# round trips
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 2, 7, 1000])
def test_roundtrip_small_sizes(n):
    rng = np.random.default_rng(n)
    cdfs, lengths, offsets = random_tables(rng, 5, 30)
    idx = rng.integers(0, 5, n).astype(np.int32)
    sym = sample(rng, cdfs, lengths, offsets, idx)
    data = roundtrip(sym, idx, cdfs, lengths, offsets)
    if n == 0:
        assert data == b""


def test_roundtrip_million():
    rng = np.random.default_rng(1)
    cdfs, lengths, offsets = random_tables(rng, 64, 200)
    idx = rng.integers(0, 64, 10**6).astype(np.int32)
    sym = sample(rng, cdfs, lengths, offsets, idx)
    roundtrip(sym, idx, cdfs, lengths, offsets)


@FAST
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 3000), n_tables=st.integers(1, 20),
       max_len=st.integers(2, 300), escapes=st.booleans())
def test_roundtrip_random(seed, n, n_tables, max_len, escapes):
    rng = np.random.default_rng(seed)
    cdfs, lengths, offsets = random_tables(rng, n_tables, max_len)
    idx = rng.integers(0, n_tables, n).astype(np.int32)
    sym = sample(rng, cdfs, lengths, offsets, idx, escapes)
    roundtrip(sym, idx, cdfs, lengths, offsets)


@FAST
@given(values=st.lists(st.integers(I32_MIN, I32_MAX), min_size=1, max_size=200),
       offset=st.integers(I32_MIN, I32_MAX), nsym=st.integers(0, 40))
def test_roundtrip_any_int32(values, offset, nsym):
    cdfs, lengths = uniform_table(nsym)
    sym = np.array(values, np.int32)
    idx = np.zeros(len(values), np.int32)
    roundtrip(sym, idx, cdfs, lengths, np.array([offset], np.int32))


@pytest.mark.parametrize("offset", [0, -5, 7, I32_MIN, I32_MAX, -(2**30), 2**30])
def test_extreme_and_escaped_values(offset):
    cdfs, lengths = uniform_table(9)
    values = [I32_MIN, I32_MAX, I32_MIN + 1, I32_MAX - 1, 0, -1, 1, 8, 9, 10, 11, -100, 10**6, -(10**9), 123456789]
    values += [offset + k for k in range(-3, 14) if I32_MIN <= offset + k <= I32_MAX]
    sym = np.array(values, np.int32)
    idx = np.zeros(sym.size, np.int32)
    roundtrip(sym, idx, cdfs, lengths, np.array([offset], np.int32))


def test_escape_only_table():
    # cdf_length 2: a single (escape) symbol, every value goes to bypass mode.
    cdfs = np.array([[0, 65536]], np.int32)
    sym = np.array([0, 1, -1, I32_MIN, I32_MAX, 42], np.int32)
    roundtrip(sym, np.zeros(6, np.int32), cdfs, np.array([2], np.int32), np.array([-3], np.int32))


def test_extreme_probabilities():
    # One symbol with probability 1 - 2^-16 * 99, 99 symbols of frequency 1.
    length = 102
    cdf = np.concatenate([[0], 65536 - 100 + np.arange(0, 101)]).astype(np.int32)
    assert cdf.size == length and cdf[-1] == 65536
    rng = np.random.default_rng(3)
    sym = np.where(rng.random(200000) < 0.001, rng.integers(1, 100, 200000), 0).astype(np.int32)
    idx = np.zeros(sym.size, np.int32)
    data = roundtrip(sym, idx, cdf[None], np.array([length], np.int32), np.array([0], np.int32))
    ideal = ideal_bits(sym, idx, cdf[None], np.array([length], np.int32), np.array([0], np.int32))
    assert len(data) * 8 <= ideal * 1.005 + 128


def test_long_carry_chains():
    # Symbols at the top of the interval produce long runs of 0xFF bytes and carries.
    cdf = np.array([[0, 1, 65535, 65536]], np.int32)
    for pattern in ([1] * 5000, [1] * 3000 + [0] + [1] * 3000, [1, 0] * 2000, [0] * 5000 + [1] * 5000):
        sym = np.array(pattern, np.int32)
        roundtrip(sym, np.zeros(sym.size, np.int32), cdf, np.array([4], np.int32), np.array([0], np.int32))


def test_accepts_integer_array_likes():
    cdfs, lengths = uniform_table(4)
    data = rc.encode(np.array([1, 2, 3], np.int64), [0, 0, 0], cdfs.astype(np.int64), [6], np.array([0], np.uint8))
    assert rc.decode(bytearray(data), np.array([0, 0, 0], np.int16), cdfs, lengths, [0]).tolist() == [1, 2, 3]
    assert rc.decode(memoryview(data), [0, 0, 0], cdfs, lengths, [0]).tolist() == [1, 2, 3]
    # non-contiguous inputs are made contiguous
    sym = np.array([1, 9, 2, 9, 3, 9], np.int32)[::2]
    assert rc.decode(rc.encode(sym, [0, 0, 0], cdfs, lengths, [0]), [0, 0, 0], cdfs, lengths, [0]).tolist() == [1, 2, 3]


# ----------------------------------------------------------------------------------
# compression efficiency
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("n_tables,max_len,seed", [(1, 20, 0), (64, 300, 1), (8, 3, 2), (4, 1000, 3)])
def test_size_close_to_ideal(n_tables, max_len, seed):
    rng = np.random.default_rng(seed)
    cdfs, lengths, offsets = random_tables(rng, n_tables, max_len, min_len=min(3, max_len))
    n = 200_000
    idx = rng.integers(0, n_tables, n).astype(np.int32)
    sym = sample(rng, cdfs, lengths, offsets, idx, escapes=False)
    data = roundtrip(sym, idx, cdfs, lengths, offsets)
    ideal = ideal_bits(sym, idx, cdfs, lengths, offsets)
    assert len(data) * 8 <= ideal * 1.005 + 128, (len(data) * 8, ideal)


# ----------------------------------------------------------------------------------
# compressai tables and models
# ----------------------------------------------------------------------------------
def _compressai_tables(model):
    return (
        np.ascontiguousarray(model._quantized_cdf.numpy(), dtype=np.int32),
        np.ascontiguousarray(model._cdf_length.reshape(-1).numpy(), dtype=np.int32),
        np.ascontiguousarray(model._offset.reshape(-1).numpy(), dtype=np.int32),
    )


@pytest.fixture(scope="module")
def compressai_models():
    torch = pytest.importorskip("torch")
    pytest.importorskip("compressai")
    from compressai.entropy_models import EntropyBottleneck, GaussianConditional
    from compressai.models.google import get_scale_table

    torch.manual_seed(0)
    eb = EntropyBottleneck(16)
    with torch.no_grad():  # make the learned CDFs non-trivial
        for p in eb.parameters():
            p.add_(0.3 * torch.randn_like(p))
    eb.update(force=True)
    gc = GaussianConditional(None)
    gc.update_scale_table(get_scale_table(), force=True)
    return eb, gc


def test_compressai_table_layouts(compressai_models):
    rng = np.random.default_rng(5)
    for model in compressai_models:
        cdfs, lengths, offsets = _compressai_tables(model)
        n_tables = cdfs.shape[0]
        idx = rng.integers(0, n_tables, 100_000).astype(np.int32)
        sym = sample(rng, cdfs, lengths, offsets, idx)
        sym[:6] = [I32_MIN, I32_MAX, 0, -1000, 1000, offsets[idx[5]] - 1]
        roundtrip(sym, idx, cdfs, lengths, offsets)
        # size vs ideal without escapes
        sym = sample(rng, cdfs, lengths, offsets, idx, escapes=False)
        data = roundtrip(sym, idx, cdfs, lengths, offsets)
        assert len(data) * 8 <= ideal_bits(sym, idx, cdfs, lengths, offsets) * 1.005 + 128


def test_compressai_bottleneck_and_gaussian(compressai_models):
    torch = pytest.importorskip("torch")
    from codec.entropy import compressai_models as coding

    eb, gc = compressai_models
    torch.manual_seed(1)
    z = torch.randn(2, 16, 6, 5) * 3
    strings = coding.encode_bottleneck(eb, z)
    z_hat = coding.decode_bottleneck(eb, strings, z.shape[-2:])
    ref = eb.decompress(eb.compress(z), z.shape[-2:])
    torch.testing.assert_close(z_hat, ref, rtol=0, atol=0)

    y = torch.randn(2, 8, 12, 10) * 6
    y[0, 0, 0, 0] = 1e5  # far outside every table: escaped
    scales = torch.rand(2, 8, 12, 10) * 20 + 0.05
    means = torch.randn(2, 8, 12, 10)
    strings = coding.encode_gaussian(gc, y, scales, means)
    y_hat = coding.decode_gaussian(gc, strings, scales, means)
    idx = gc.build_indexes(scales)
    ref = gc.decompress(gc.compress(y, idx, means), idx, means=means)
    torch.testing.assert_close(y_hat, ref, rtol=0, atol=0)


def test_smaller_than_compressai_ans(compressai_models):
    ans = pytest.importorskip("compressai.ans")
    _, gc = compressai_models
    cdfs, lengths, offsets = _compressai_tables(gc)
    rng = np.random.default_rng(6)
    idx = rng.integers(0, cdfs.shape[0], 20_000).astype(np.int32)
    sym = sample(rng, cdfs, lengths, offsets, idx)
    ours = rc.encode(sym, idx, cdfs, lengths, offsets)
    args = (sym.tolist(), idx.tolist(), cdfs.tolist(), lengths.tolist(), offsets.tolist())
    theirs = ans.RansEncoder().encode_with_indexes(*args)
    assert rc.decode(ours, idx, cdfs, lengths, offsets).tolist() == sym.tolist()
    assert ans.RansDecoder().decode_with_indexes(theirs, *args[1:]) == sym.tolist()
    assert len(ours) <= len(theirs)


# ----------------------------------------------------------------------------------
# hardening: corrupt data decodes or raises ValueError, never crashes or hangs
# ----------------------------------------------------------------------------------
def _decode_or_valueerror(data, idx, cdfs, lengths, offsets):
    try:
        out = rc.decode(data, idx, cdfs, lengths, offsets)
    except ValueError:
        return None
    assert out.shape == idx.shape and out.dtype == np.int32
    return out


def test_corrupt_streams():
    rng = np.random.default_rng(7)
    raised = 0
    total = 0
    for it in range(200):
        cdfs, lengths, offsets = random_tables(rng, 4, int(rng.integers(2, 60)))
        n = int(rng.integers(1, 300))
        idx = rng.integers(0, 4, n).astype(np.int32)
        sym = sample(rng, cdfs, lengths, offsets, idx)
        data = rc.encode(sym, idx, cdfs, lengths, offsets)
        variants = [data[: int(rng.integers(0, len(data) + 1))], b"", rng.bytes(int(rng.integers(0, 64)))]
        for _ in range(5):
            b = bytearray(data)
            if b:
                for _ in range(int(rng.integers(1, 4))):
                    b[int(rng.integers(0, len(b)))] ^= 1 << int(rng.integers(0, 8))
            variants.append(bytes(b))
        variants += [b"\xff" * len(data), b"\x00" * (len(data) + 20), data + rng.bytes(5)]
        for v in variants:
            total += 1
            raised += _decode_or_valueerror(v, idx, cdfs, lengths, offsets) is None
    assert total >= 2000
    assert raised > 0  # truncation/corruption is detected at least sometimes


def test_truncated_large_stream_raises():
    rng = np.random.default_rng(8)
    cdfs, lengths, offsets = random_tables(rng, 8, 100)
    idx = rng.integers(0, 8, 50_000).astype(np.int32)
    sym = sample(rng, cdfs, lengths, offsets, idx)
    data = rc.encode(sym, idx, cdfs, lengths, offsets)
    for cut in (0, 1, len(data) // 2, len(data) - 20):
        with pytest.raises(ValueError, match="truncated|corrupt"):
            rc.decode(data[:cut], idx, cdfs, lengths, offsets)
    with pytest.raises(ValueError, match="truncated|corrupt"):
        rc.decode(b"", idx, cdfs, lengths, offsets)


def test_escape_bypass_corruption():
    # Streams of pure escapes: random bytes hit the chunk-count and int32 checks.
    cdfs = np.array([[0, 65536]], np.int32)
    rng = np.random.default_rng(9)
    for _ in range(500):
        n = int(rng.integers(1, 20))
        _decode_or_valueerror(rng.bytes(int(rng.integers(0, 100))), np.zeros(n, np.int32), cdfs, np.array([2], np.int32),
                              np.array([int(rng.integers(I32_MIN, I32_MAX))], np.int32))


# ----------------------------------------------------------------------------------
# threads
# ----------------------------------------------------------------------------------
def test_threads_match_sequential():
    rng = np.random.default_rng(10)
    cdfs, lengths, offsets = random_tables(rng, 16, 100)
    jobs = []
    for _ in range(16):
        idx = rng.integers(0, 16, 100_000).astype(np.int32)
        jobs.append((sample(rng, cdfs, lengths, offsets, idx), idx))
    seq = [rc.encode(s, i, cdfs, lengths, offsets) for s, i in jobs]
    with ThreadPoolExecutor(4) as pool:
        par = list(pool.map(lambda j: rc.encode(j[0], j[1], cdfs, lengths, offsets), jobs))
        dec = list(pool.map(lambda a: rc.decode(a[0], a[1][1], cdfs, lengths, offsets), zip(par, jobs)))
    assert par == seq
    for d, (s, _) in zip(dec, jobs):
        np.testing.assert_array_equal(d, s)


# ----------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------
def _valid():
    cdfs = np.array([[0, 20000, 65536, 0], [0, 1000, 30000, 65536]], np.int32)
    return dict(symbols=np.array([0, 1, 2], np.int32), indexes=np.array([0, 1, 1], np.int32), cdfs=cdfs,
                cdf_lengths=np.array([3, 4], np.int32), offsets=np.array([0, -1], np.int32))


def _call_both(**kw):
    """Run encode (with symbols) and decode (with a valid stream) on modified arguments."""
    good = _valid()
    data = rc.encode(**good)
    args = {**good, **kw}
    with pytest.raises(Exception) as e1:
        rc.encode(**args)
    dargs = {k: v for k, v in args.items() if k != "symbols"}
    return e1, dargs, data


@pytest.mark.parametrize(
    "change,exc,match",
    [
        (dict(symbols=np.array([0.5, 1, 2])), TypeError, "symbols"),
        (dict(indexes=np.array([0.0, 1, 1])), TypeError, "indexes"),
        (dict(cdfs=np.array([[0, 0.5, 1.0, 0], [0, 0.1, 0.2, 1.0]])), TypeError, "cdfs"),
        (dict(symbols=np.array([[0, 1, 2]], np.int32)), ValueError, "symbols"),
        (dict(cdfs=np.zeros(4, np.int32)), ValueError, "cdfs"),
        (dict(symbols=np.array([0, 1], np.int32)), ValueError, "same length"),
        (dict(indexes=np.array([0, 2, 1], np.int32)), ValueError, r"indexes\[1\]"),
        (dict(indexes=np.array([0, -1, 1], np.int32)), ValueError, r"indexes\[1\]"),
        (dict(cdf_lengths=np.array([3], np.int32)), ValueError, "cdf_lengths"),
        (dict(offsets=np.array([0, 0, 0], np.int32)), ValueError, "offsets"),
        (dict(cdf_lengths=np.array([1, 4], np.int32)), ValueError, r"cdf_lengths\[0\]"),
        (dict(cdf_lengths=np.array([3, 5], np.int32)), ValueError, r"cdf_lengths\[1\]"),
        (dict(cdfs=np.array([[1, 20000, 65536, 0], [0, 1000, 30000, 65536]], np.int32)), ValueError, r"cdfs\[0\]\[0\]"),
        (dict(cdfs=np.array([[0, 200, 1024, 0], [0, 1000, 30000, 65536]], np.int32)), ValueError, "65536"),
        (dict(cdfs=np.array([[0, 20000, 65536, 0], [0, 1000, 1000, 65536]], np.int32)), ValueError, "zero frequency"),
        (dict(cdfs=np.array([[0, 70000, 65536, 0], [0, 1000, 30000, 65536]], np.int32)), ValueError, "strictly increasing"),
        (dict(symbols=np.array([0, 1, 2**40])), ValueError, "int32"),
        (dict(offsets=np.array([0, 2**33])), ValueError, "offsets"),
    ],
)
def test_validation_errors(change, exc, match):
    e1, dargs, data = _call_both(**change)
    assert e1.type is exc and e1.match(match)
    if "symbols" not in change:
        with pytest.raises(exc, match=match):
            rc.decode(data, **dargs)


def test_data_type_errors():
    good = _valid()
    del good["symbols"]
    with pytest.raises(TypeError, match="data"):
        rc.decode("abc", **good)
    with pytest.raises(TypeError, match="data"):
        rc.decode([1, 2, 3], **good)


def test_extension_type_checks():
    ext = importlib.import_module("codec._rangecoder")
    good = _valid()
    tables = ext.Tables(good["cdfs"], good["cdf_lengths"], good["offsets"])
    with pytest.raises(TypeError, match="symbols"):
        ext.encode([0, 1, 2], good["indexes"], tables)
    with pytest.raises(TypeError, match="indexes"):
        ext.encode(good["symbols"], good["indexes"].astype(np.int64), tables)
    with pytest.raises(ValueError, match="contiguous"):
        ext.Tables(np.asfortranarray(good["cdfs"]), good["cdf_lengths"], good["offsets"])
    with pytest.raises(TypeError, match="cdf_lengths"):
        ext.Tables(good["cdfs"], good["cdf_lengths"].astype(np.int64), good["offsets"])
    with pytest.raises(TypeError, match="data"):
        ext.decode(object(), good["indexes"], tables)
    with pytest.raises(TypeError):
        ext.encode(good["symbols"], good["indexes"], good["cdfs"])  # arrays are not a Tables


def test_import_error_message(monkeypatch):
    import codec

    monkeypatch.setitem(sys.modules, "codec._rangecoder", None)
    monkeypatch.delattr(codec, "_rangecoder", raising=False)
    monkeypatch.delitem(sys.modules, "codec.entropy.rangecoder")
    with pytest.raises(ImportError, match="pip install -e"):
        importlib.import_module("codec.entropy.rangecoder")
    monkeypatch.undo()
    importlib.import_module("codec.entropy.rangecoder")


def test_extension_refuses_non_native_byte_order():
    """The raw extension used to read a big-endian int32 array as native order."""
    from codec import _rangecoder as ext

    cdfs = np.array([[0, 30000, 65535, 65536]], dtype=np.int32)
    with pytest.raises(TypeError, match="byte order"):
        ext.encode(np.array([0, 1], ">i4"), np.zeros(2, np.int32), ext.Tables(cdfs, np.array([4], np.int32), np.array([0], np.int32)))
    with pytest.raises(TypeError, match="byte order"):
        ext.Tables(cdfs.astype(">i4"), np.array([4], np.int32), np.array([0], np.int32))
    # The Python module converts such arrays, so it codes them as their values say.
    sym = np.array([0, 1, 1, 0], np.int32)
    args = (np.zeros(4, np.int32), cdfs, np.array([4], np.int32), np.array([0], np.int32))
    assert rc.encode(sym.astype(">i4"), *args) == rc.encode(sym, *args)
