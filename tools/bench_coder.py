#!/usr/bin/env python
"""Benchmark codec.entropy.rangecoder against compressai's rANS, constriction and range_coder.

Workloads
  (a) hyperprior-like Gaussian-conditional latents of a 768x512 image: 192 x 48 x 32
      = 294,912 values y ~ round(N(0, s)), s drawn uniformly from compressai's 64-entry
      scale table, each coded with the GaussianConditional table of its scale;
  (b) 10^7 values from one table (the GaussianConditional table of scale ~ 2.9).

Each coder is timed end to end from Python, as a caller would use it (best of --repeat
runs, wall clock): ours with numpy arrays; compressai ``ans`` as compressai calls it
(``.tolist()`` conversions included); constriction grouped by table (one Categorical
model per table, built from the same quantized tables, one encode/decode call per
table -- its fastest Python usage here, grouping and model construction included);
range_coder (single table only, through a file on /dev/shm or a temp dir).

Usage: python tools/bench_coder.py [--quick] [--repeat N] [--markdown docs/rangecoder.md]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np


from codec.entropy import rangecoder as rc


def gaussian_tables():
    from compressai.entropy_models import GaussianConditional
    from compressai.models.google import get_scale_table

    gc = GaussianConditional(None)
    gc.update_scale_table(get_scale_table(), force=True)
    cdfs = np.ascontiguousarray(gc._quantized_cdf.numpy(), dtype=np.int32)
    lengths = np.ascontiguousarray(gc._cdf_length.numpy(), dtype=np.int32)
    offsets = np.ascontiguousarray(gc._offset.numpy(), dtype=np.int32)
    return cdfs, lengths, offsets, gc.scale_table.numpy()


def ideal_bits(sym, idx, cdfs, lengths, offsets):
    s = sym.astype(np.int64) - offsets[idx]
    ok = (s >= 0) & (s < lengths[idx] - 2)
    s = np.where(ok, s, lengths[idx] - 2)  # escapes: count the escape symbol only
    freq = cdfs[idx, s + 1].astype(np.int64) - cdfs[idx, s]
    return float(-np.log2(freq / 65536.0).sum()), int((~ok).sum())


def best_of(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


# ------------------------------------------------------------------------------------
# coders: each returns (encode_fn, decode_fn(data) -> np.ndarray) or None if n/a
# ------------------------------------------------------------------------------------
def ours(sym, idx, cdfs, lengths, offsets, single):
    return (lambda: rc.encode(sym, idx, cdfs, lengths, offsets),
            lambda data: rc.decode(data, idx, cdfs, lengths, offsets))


def compressai_ans(sym, idx, cdfs, lengths, offsets, single):
    from compressai import ans

    def enc():
        return ans.RansEncoder().encode_with_indexes(sym.tolist(), idx.tolist(), cdfs.tolist(), lengths.tolist(), offsets.tolist())

    def dec(data):
        return np.asarray(ans.RansDecoder().decode_with_indexes(data, idx.tolist(), cdfs.tolist(), lengths.tolist(), offsets.tolist()), np.int32)

    return enc, dec


def _groups(sym, idx, offsets, lengths):
    """Per-table symbol groups (escapes clipped to the escape symbol: no bypass coding)."""
    order = np.argsort(idx, kind="stable")
    tables, starts = np.unique(idx[order], return_index=True)
    bounds = list(starts) + [idx.size]
    return order, [(int(t), order[bounds[k]:bounds[k + 1]]) for k, t in enumerate(tables)]


def _probs(cdfs, lengths, t):
    return np.diff(cdfs[t, : lengths[t]]).astype(np.float64) / 65536.0


def constriction_coder(kind):
    def make(sym, idx, cdfs, lengths, offsets, single):
        import constriction

        Categorical = constriction.stream.model.Categorical

        def prep():
            order, groups = _groups(sym, idx, offsets, lengths)
            return groups

        def local(t, pos):
            s = sym[pos].astype(np.int64) - offsets[t]
            return np.clip(s, 0, lengths[t] - 2).astype(np.int32)

        if kind == "queue":
            decoder_type = constriction.stream.queue.RangeDecoder

            def enc():
                e = constriction.stream.queue.RangeEncoder()
                for t, pos in prep():
                    e.encode(local(t, pos), Categorical(_probs(cdfs, lengths, t), perfect=False))
                return e.get_compressed()
        else:
            decoder_type = constriction.stream.stack.AnsCoder

            def enc():
                e = constriction.stream.stack.AnsCoder()
                for t, pos in reversed(prep()):
                    e.encode_reverse(local(t, pos), Categorical(_probs(cdfs, lengths, t), perfect=False))
                return e.get_compressed()

        def dec(data):
            # Both coders decode in encoding order: the stack coder was filled in reverse.
            d = decoder_type(data)
            out = np.empty(idx.size, np.int32)
            for t, pos in prep():
                out[pos] = d.decode(Categorical(_probs(cdfs, lengths, t), perfect=False), pos.size) + offsets[t]
            return out
        return enc, dec
    return make


def range_coder_pkg(sym, idx, cdfs, lengths, offsets, single):
    if not single:
        return None
    import range_coder

    t = int(idx[0])
    cum = cdfs[t, : lengths[t]].tolist()
    tmpdir = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    path = os.path.join(tmpdir, f"bench_range_coder_{os.getpid()}.bin")

    def enc():
        s = np.clip(sym.astype(np.int64) - offsets[t], 0, lengths[t] - 2)
        e = range_coder.RangeEncoder(path)
        e.encode(s.tolist(), cum)
        e.close()
        with open(path, "rb") as f:
            return f.read()

    def dec(data):
        with open(path, "wb") as f:
            f.write(data)
        d = range_coder.RangeDecoder(path)
        out = np.asarray(d.decode(int(sym.size), cum), np.int32) + offsets[t]
        d.close()
        return out

    return enc, dec


CODERS = [
    ("ours (codec.entropy.rangecoder, numpy)", ours),
    ("compressai ans (lists)", compressai_ans),
    ("constriction queue.RangeEncoder", constriction_coder("queue")),
    ("constriction stack.AnsCoder", constriction_coder("stack")),
    ("range_coder (PyPI)", range_coder_pkg),
]


def data_size(data) -> int:
    return len(data) if isinstance(data, (bytes, bytearray)) else int(np.asarray(data).nbytes)


def run_workload(name, sym, idx, cdfs, lengths, offsets, single, repeat, rows):
    n = sym.size
    ideal, n_esc = ideal_bits(sym, idx, cdfs, lengths, offsets)
    print(f"# {name}: {n} symbols, {len(np.unique(idx))} tables, ideal {ideal / n:.4f} bits/symbol, {n_esc} escapes", file=sys.stderr)
    for label, make in CODERS:
        try:
            coder = make(sym, idx, cdfs, lengths, offsets, single)
        except ImportError as exc:
            print(f"  {label}: skipped ({exc})", file=sys.stderr)
            coder = None
        if coder is None:
            rows.append((name, label, None, None, None, None))
            continue
        enc, dec = coder
        t_enc, data = best_of(enc, repeat)
        t_dec, out = best_of(lambda: dec(data), repeat)
        expect = sym
        if label.startswith(("constriction", "range_coder")) and n_esc:
            s = np.clip(sym.astype(np.int64) - offsets[idx], 0, lengths[idx] - 2)
            expect = (s + offsets[idx]).astype(np.int32)
        ok = np.array_equal(np.asarray(out), expect)
        bits = data_size(data) * 8
        rows.append((name, label, n / t_enc / 1e6, n / t_dec / 1e6, bits / n, (bits / ideal - 1) * 100 if ideal else float("nan")))
        print(f"  {label}: enc {t_enc * 1e3:.1f} ms, dec {t_dec * 1e3:.1f} ms, {data_size(data)} bytes, roundtrip {'ok' if ok else 'FAILED'}",
              file=sys.stderr)
        if not ok:
            raise SystemExit(f"{label}: round trip failed on {name}")


def table(rows) -> str:
    lines = ["| workload | coder | encode Msym/s | decode Msym/s | bits/symbol | vs ideal |",
             "|---|---|---:|---:|---:|---:|"]
    for name, label, e, d, b, o in rows:
        if e is None:
            lines.append(f"| {name} | {label} | n/a | n/a | n/a | n/a |")
        else:
            lines.append(f"| {name} | {label} | {e:.2f} | {d:.2f} | {b:.4f} | {o:+.3f}% |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--markdown", help="replace the table between BENCH markers in this file")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    cdfs, lengths, offsets, scales = gaussian_tables()
    rows: list = []

    # (a) hyperprior-like latents of a 768x512 image
    c, h, w = (192, 48, 32) if not args.quick else (192, 12, 8)
    idx = rng.integers(0, len(scales), c * h * w).astype(np.int32)
    sym = np.round(rng.standard_normal(idx.size) * scales[idx]).astype(np.int32)
    run_workload(f"(a) Gaussian latents {c}x{h}x{w}", sym, idx, cdfs, lengths, offsets, False, args.repeat, rows)

    # (b) 10^7 values, one table
    n = 10**7 if not args.quick else 10**5
    t = int(np.argmin(np.abs(scales - 3.0)))
    idx = np.full(n, t, np.int32)
    sym = np.round(rng.standard_normal(n) * scales[t]).astype(np.int32)
    run_workload(f"(b) {n:.0e} values, 1 table", sym, idx, cdfs, lengths, offsets, True, args.repeat, rows)

    md = table(rows)
    print(md)
    if args.markdown:
        with open(args.markdown) as f:
            text = f.read()
        start, end = "<!-- BENCH START -->", "<!-- BENCH END -->"
        if start in text and end in text:
            head, rest = text.split(start, 1)
            _, tail = rest.split(end, 1)
            text = f"{head}{start}\n{md}\n{end}{tail}"
        else:
            text += f"\n{start}\n{md}\n{end}\n"
        with open(args.markdown, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
