#!/usr/bin/env python
"""Fuzz codec.entropy.rangecoder: random tables and values, then mutated / truncated / random streams.

Every iteration
  * builds random tables (1..32 tables, lengths 2..4000, skewed, flat or frequency-1
    distributions, offsets anywhere in int32) and random values (in-table, near the table,
    escapes, INT32_MIN / INT32_MAX);
  * checks decode(encode(x)) == x;
  * decodes mutated streams (truncation, bit flips, byte insert / delete / overwrite,
    appended junk, pure random bytes, all-0x00 / all-0xFF) with the right and with wrong
    tables: each must return an int32 array of the right length or raise ValueError;
  * occasionally calls the coder with invalid tables / indexes, which must raise
    ValueError or TypeError;
  * every other iteration, codes the values as 1..8 substreams on 1..4 threads
    (encode_substreams must equal encode of each slice, decode_substreams must round-trip),
    decodes lists with one mutated substream (ValueError naming it, or an int32 array with
    the other substreams intact) and calls with broken bounds / thread counts (ValueError).
Anything else (a mismatch, another exception type, a crash, a sanitizer report) is a bug.

Usage: python tools/fuzz_coder.py [--iterations N] [--seed S] [--max-symbols M]
Exit status 0 when no bug was found.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


from codec.entropy import rangecoder as rc

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def random_tables(rng):
    n_tables = int(rng.integers(1, 33))
    max_len = int(rng.choice([2, 3, 5, 20, 100, 600, 4000]))
    lengths = rng.integers(2, max_len + 1, n_tables)
    cdfs = np.zeros((n_tables, max_len + int(rng.integers(0, 3))), np.int32)
    for i, length in enumerate(lengths):
        nsym = int(length) - 1
        kind = rng.integers(0, 3)
        if kind == 0:  # skewed
            p = rng.random(nsym) ** rng.uniform(1, 12) + 1e-15
        elif kind == 1:  # flat
            p = np.ones(nsym)
        else:  # one dominant symbol, the rest at frequency 1
            p = np.full(nsym, 1e-12)
            p[rng.integers(0, nsym)] = 1.0
        freq = np.maximum(1, np.floor(p / p.sum() * (65536 - nsym))).astype(np.int64)
        freq[np.argmax(freq)] += 65536 - freq.sum()
        cdfs[i, :length] = np.concatenate([[0], np.cumsum(freq)])
    mode = rng.integers(0, 3)
    if mode == 0:
        offsets = rng.integers(-100, 100, n_tables)
    elif mode == 1:
        offsets = rng.integers(I32_MIN, I32_MAX, n_tables, endpoint=True)
    else:
        offsets = rng.choice([I32_MIN, I32_MAX, 0, -1], n_tables)
    return cdfs, lengths.astype(np.int32), offsets.astype(np.int32)


def random_values(rng, n, idx, lengths, offsets):
    base = offsets[idx].astype(np.int64)
    s = np.floor(rng.random(n) * (lengths[idx] - 1)).astype(np.int64)
    v = base + s
    k = rng.random(n)
    v = np.where(k < 0.05, base + rng.integers(-50, 50, n) + lengths[idx], v)
    v = np.where((k >= 0.05) & (k < 0.08), rng.integers(I32_MIN, I32_MAX, n, endpoint=True), v)
    v = np.where((k >= 0.08) & (k < 0.09), rng.choice([I32_MIN, I32_MAX], n), v)
    return np.clip(v, I32_MIN, I32_MAX).astype(np.int32)


def mutations(rng, data):
    out = [b"", rng.bytes(int(rng.integers(1, 64))), b"\x00" * (len(data) + 16), b"\xff" * max(1, len(data)), data + rng.bytes(8)]
    if data:
        out.append(data[: int(rng.integers(0, len(data)))])
        out.append(data[: max(0, len(data) - int(rng.integers(1, 12)))])
        for _ in range(4):
            b = bytearray(data)
            for _ in range(int(rng.integers(1, 5))):
                b[int(rng.integers(0, len(b)))] ^= 1 << int(rng.integers(0, 8))
            out.append(bytes(b))
        b = bytearray(data)
        del b[int(rng.integers(0, len(b)))]
        out.append(bytes(b))
        b = bytearray(data)
        b.insert(int(rng.integers(0, len(b) + 1)), int(rng.integers(0, 256)))
        out.append(bytes(b))
        b = bytearray(data)
        pos = int(rng.integers(0, len(b)))
        b[pos:pos + 8] = rng.bytes(8)
        out.append(bytes(b))
    return out


def check_decode(data, idx, cdfs, lengths, offsets, stats):
    try:
        out = rc.decode(data, idx, cdfs, lengths, offsets)
    except ValueError:
        stats["rejected"] += 1
        return
    if out.dtype != np.int32 or out.shape != idx.shape:
        raise AssertionError(f"bad output {out.dtype} {out.shape}")
    stats["decoded"] += 1


def invalid_call(rng, cdfs, lengths, offsets, idx, sym, stats):
    kind = int(rng.integers(0, 6))
    cdfs, lengths, offsets, idx = cdfs.copy(), lengths.copy(), offsets.copy(), idx.copy()
    t = int(rng.integers(0, cdfs.shape[0]))
    if kind == 0 and idx.size:
        idx[int(rng.integers(0, idx.size))] = rng.choice([-1, cdfs.shape[0], I32_MAX, I32_MIN])
    elif kind == 1:
        lengths[t] = rng.choice([0, 1, -5, cdfs.shape[1] + 1])
    elif kind == 2:
        cdfs[t, lengths[t] - 1] = rng.choice([65535, 65537, 1 << 15, 0])
    elif kind == 3 and lengths[t] > 2:
        k = int(rng.integers(1, lengths[t] - 1))
        cdfs[t, k] = cdfs[t, k - 1]
    elif kind == 4:
        cdfs[t, 0] = rng.choice([1, -1])
    else:
        offsets = offsets[:-1] if offsets.size > 1 else np.zeros(2, np.int32)
    for fn in (lambda: rc.encode(sym, idx, cdfs, lengths, offsets), lambda: rc.decode(b"\x00" * 16, idx, cdfs, lengths, offsets)):
        try:
            fn()
            stats["invalid_accepted"] += 1  # e.g. the broken index was not used
        except (ValueError, TypeError):
            stats["invalid_rejected"] += 1


def check_substreams(rng, sym, idx, cdfs, lengths, offsets, stats):
    n = sym.size
    n_sub = int(rng.integers(1, 9))
    bounds = np.concatenate([[0], np.sort(rng.integers(0, n + 1, n_sub - 1)), [n]]).astype(np.int64)
    threads = int(rng.integers(1, 5))
    strings = rc.encode_substreams(sym, idx, cdfs, lengths, offsets, bounds, threads=threads)
    for j, s in enumerate(strings):
        if s != rc.encode(sym[bounds[j]:bounds[j + 1]], idx[bounds[j]:bounds[j + 1]], cdfs, lengths, offsets):
            raise AssertionError(f"substream {j} differs from encode of its slice")
    if not np.array_equal(rc.decode_substreams(strings, idx, cdfs, lengths, offsets, bounds, threads=threads), sym):
        raise AssertionError("substream round trip mismatch")
    stats["substream_roundtrips"] += 1
    j = int(rng.integers(0, n_sub))
    ms = mutations(rng, strings[j])
    for k in rng.choice(len(ms), size=min(3, len(ms)), replace=False):
        damaged = list(strings)
        damaged[j] = ms[int(k)]
        try:
            out = rc.decode_substreams(damaged, idx, cdfs, lengths, offsets, bounds, threads=threads)
        except ValueError as e:
            if not str(e).startswith(f"substream {j}: "):
                raise AssertionError(f"error does not name substream {j}: {e}") from e
            stats["substream_rejected"] += 1
            continue
        keep = np.ones(n, bool)
        keep[bounds[j]:bounds[j + 1]] = False
        if out.dtype != np.int32 or out.shape != (n,) or not np.array_equal(out[keep], sym[keep]):
            raise AssertionError("a damaged substream changed the others")
        stats["substream_decoded"] += 1
    bad = bounds.copy()
    kind = int(rng.integers(0, 4))
    if kind == 0:
        bad[-1] += int(rng.choice([-1, 1, 2**40]))
    elif kind == 1:
        bad[0] = int(rng.choice([-1, 1]))
    elif kind == 2 and n_sub > 1:
        bad[1], bad[-2] = n + 1, -1
    else:
        bad = bad[:1]
    for t in (threads, int(rng.choice([0, -1, rc.MAX_THREADS + 1]))):
        if t == threads and kind == 2 and n_sub == 1:
            continue  # bounds left valid
        try:
            rc.encode_substreams(sym, idx, cdfs, lengths, offsets, bad if t == threads else bounds, threads=t)
        except ValueError:
            stats["invalid_rejected"] += 1
        else:
            raise AssertionError(f"bad bounds {bad} / threads {t} accepted")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-symbols", type=int, default=2000)
    args = ap.parse_args()

    stats = dict(roundtrips=0, decoded=0, rejected=0, invalid_rejected=0, invalid_accepted=0, substream_roundtrips=0,
                 substream_decoded=0, substream_rejected=0)
    t0 = time.time()
    for it in range(args.iterations):
        rng = np.random.default_rng([args.seed, it])
        cdfs, lengths, offsets = random_tables(rng)
        n = int(rng.integers(0, args.max_symbols + 1)) if rng.random() < 0.9 else int(rng.integers(0, 4))
        idx = rng.integers(0, cdfs.shape[0], n).astype(np.int32)
        sym = random_values(rng, n, idx, lengths, offsets)
        data = rc.encode(sym, idx, cdfs, lengths, offsets)
        out = rc.decode(data, idx, cdfs, lengths, offsets)
        if not np.array_equal(out, sym):
            print(f"ROUND TRIP MISMATCH: seed {args.seed} iteration {it}", file=sys.stderr)
            return 1
        stats["roundtrips"] += 1
        other_cdfs, other_lengths, other_offsets = random_tables(rng)
        other_idx = rng.integers(0, other_cdfs.shape[0], n).astype(np.int32)
        for m in mutations(rng, data):
            check_decode(m, idx, cdfs, lengths, offsets, stats)
        check_decode(data, other_idx, other_cdfs, other_lengths, other_offsets, stats)  # wrong tables
        check_decode(memoryview(bytearray(data)), idx, cdfs, lengths, offsets, stats)
        if it % 4 == 0:
            invalid_call(rng, cdfs, lengths, offsets, idx, sym, stats)
        if it % 2 == 1:
            check_substreams(rng, sym, idx, cdfs, lengths, offsets, stats)
    print(f"fuzz_coder: {args.iterations} iterations (seed {args.seed}) in {time.time() - t0:.1f}s: " +
          ", ".join(f"{k}={v}" for k, v in stats.items()) + " -- no bugs found")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
