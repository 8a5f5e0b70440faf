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

Substreams (--substreams): codec.entropy.rangecoder.encode_substreams / decode_substreams
with the split rule of codec.entropy.substreams, on latents of the shipped walloc model:
  (c) throughput with 1 and 2 threads (--threads) on a 4K-sized latent, 48 x 270 x 480,
      with one rangecoder.Tables made beforehand (as the codec makes one per model):
      y of kodim05 upscaled (bicubic) to 3840x2176 (2160 padded to the model's multiple of
      32, latent rows cropped to 270), coded with its scale indexes and means at the
      quality that gives ~0.25 bpp on kodim05 itself; wall clock and process CPU time
      (all threads) per call, best of --repeat, the variants taking turns, with the load
      average at the time; "cores used" = CPU time / wall clock;
  (d) overhead at ~0.25 bpp on Kodak (--images): per image, the quality giving ~0.25 bpp
      (y and z range-coded as codec.entropy.compressai_models does, bisection on the
      quality), then y as one stream vs split by the rule, in bytes and in % of y + z.

Per-call overhead (--overhead): the cost of one coder call with the same tables, for small
calls (--sizes, default 1,000 values: per-call work shows there) and a large one (294,912,
workload (a)), values and tables as in (a): mean wall clock per call over --calls calls (fewer
for the large size), best of --repeat rounds, the paths taking turns, with the load average.
Paths: ``arrays`` = rc.encode(symbols, indexes, cdfs, cdf_lengths, offsets), which converts
and checks the three tables on every call; ``Tables`` = a rc.Tables built once and passed
to every call (absent before the Tables object existed); ``coder seam`` = the ``cpu``
backend of codec.entropy.coders with an EntropyTables, as the codec calls it; with
--baseline SO, ``baseline arrays`` = the array API of another build's extension (e.g. one
built from the commit before the Tables object), loaded beside this one and timed in the
same rounds, so that both see the same load.

Usage: python tools/bench_coder.py [--quick] [--repeat N] [--markdown docs/rangecoder.md]
       python tools/bench_coder.py --overhead [--sizes 1000,294912] [--calls N] [--repeat N]
                                   [--baseline path/to/_rangecoder.so] [--markdown docs/rangecoder.md]
       python tools/bench_coder.py --substreams [--threads 1,2] [--target N] [--images 01,05,...]
                                   [--repeat N] [--markdown docs/rangecoder.md]
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

    from codec.entropy.compressai_models import entropy_tables

    gc = GaussianConditional(None)
    gc.update_scale_table(get_scale_table(), force=True)
    tables = entropy_tables(gc)
    return tables.cdfs, tables.cdf_lengths, tables.offsets, gc.scale_table.numpy()


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


def replace_between(path: str, marker: str, md: str) -> None:
    """Replace the text between <!-- MARKER START --> and <!-- MARKER END --> in a file (or append)."""
    with open(path) as f:
        text = f.read()
    start, end = f"<!-- {marker} START -->", f"<!-- {marker} END -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{md}\n{end}{tail}"
    else:
        text += f"\n{start}\n{md}\n{end}\n"
    with open(path, "w") as f:
        f.write(text)


# ------------------------------------------------------------------------------------
# substreams (--substreams)
# ------------------------------------------------------------------------------------
KODAK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "kodak")


class WallocLatents:
    """Symbols and table indexes of the shipped walloc's y, and the bytes of its z.

    Computed as the codec does, from the model's transforms and entropy models with
    :mod:`codec.entropy.compressai_models` (its tables, scale indexes and z coding).
    """

    def __init__(self):
        import torch

        from codec import zoo
        from codec.entropy import compressai_models as cm

        torch.set_num_threads(1)
        self.torch, self.cm = torch, cm
        self.model = zoo.load_model(zoo.model_entry("walloc"))
        tables = cm.entropy_tables(self.model.gaussian_conditional)
        self.cdfs, self.lengths, self.offsets = tables.cdfs, tables.cdf_lengths, tables.offsets

    def image(self, name: str, size: tuple[int, int] | None = None):
        from PIL import Image

        img = Image.open(os.path.join(KODAK, f"kodim{name}.png")).convert("RGB")
        if size is not None:
            img = img.resize((size[1], size[0]), Image.BICUBIC)
        x = self.torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float() / 255
        return x

    def latents(self, x, quality: float):
        """(symbols [C, H, W] int32, indexes [C, H, W] int32, z bytes) of image x at a quality."""
        torch, m = self.torch, self.model
        with torch.inference_mode():
            y = m.g_a(x) * m.gains.gain(quality)
            z = m.h_a(y)
            z_strings = self.cm.encode_bottleneck(m.entropy_bottleneck, z)
            z_hat = self.cm.decode_bottleneck(m.entropy_bottleneck, z_strings, tuple(z.shape[-2:]))
            scales, means = m.h_s(z_hat).chunk(2, dim=1)
            gc = m.gaussian_conditional
            idx = self.cm.scale_indexes(gc, scales)
            sym = gc.quantize(y, "symbols", means).int()
            z_bytes = sum(len(s) for s in z_strings)
        return sym[0].numpy(), idx[0].numpy(), z_bytes

    def y_bytes(self, sym, idx) -> int:
        return len(rc.encode(sym.reshape(-1), idx.reshape(-1), self.cdfs, self.lengths, self.offsets))

    def at_bpp(self, x, bpp: float, steps: int = 12):
        """Bisection on the quality for (y + z bytes) * 8 / pixels closest to bpp."""
        pixels = x.shape[-1] * x.shape[-2]
        lo, hi = self.model.quality_range
        best = None
        for _ in range(steps):
            q = (lo + hi) / 2
            sym, idx, zb = self.latents(x, q)
            rate = (self.y_bytes(sym, idx) + zb) * 8 / pixels
            if best is None or abs(rate - bpp) < abs(best[0] - bpp):
                best = (rate, q, sym, idx, zb)
            lo, hi = (q, hi) if rate < bpp else (lo, q)
        return best


def leb128_size(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed_interleaved(fns: dict, repeat: int) -> tuple[dict, dict, dict]:
    """Per key, the best wall clock and the process CPU time (all threads) of that run, the
    median wall clock over the runs, and the last output. The functions take turns, so a
    change of load hits all of them alike."""
    best = {k: (float("inf"), 0.0) for k in fns}
    walls: dict = {k: [] for k in fns}
    out = {}
    for _ in range(repeat):
        for k, fn in fns.items():
            c, t = cpu_seconds(), time.perf_counter()
            out[k] = fn()
            wall, cpu = time.perf_counter() - t, cpu_seconds() - c
            best[k] = min(best[k], (wall, cpu))
            walls[k].append(wall)
    return best, {k: float(np.median(v)) for k, v in walls.items()}, out


def run_substreams(args) -> str:
    from codec.entropy.substreams import substream_rows

    lat = WallocLatents()
    target = args.target
    lines = []

    # (c) throughput on a 4K-sized latent
    c, h, w = 48, 270, 480
    if args.quick:
        h, w = 34, 60
    ref = lat.image("05")
    rate, quality, *_ = lat.at_bpp(ref, args.bpp, steps=6 if args.quick else 12)
    x = lat.image("05", (-(-h * 8 // 32) * 32, w * 8))
    sym, idx, _ = lat.latents(x, quality)
    sym, idx = np.ascontiguousarray(sym[:, :h].reshape(-1)), np.ascontiguousarray(idx[:, :h].reshape(-1))
    n = sym.size
    bounds = substream_rows(c, h, w, target)
    cdfs, lengths, offsets = lat.cdfs, lat.lengths, lat.offsets
    print(f"# (c) {c}x{h}x{w} = {n} values at quality {quality:.3f} (kodim05: {rate:.3f} bpp), {len(bounds) - 1} substreams "
          f"(target {target}), {len(np.unique(idx))} tables", file=sys.stderr)
    load_before = os.getloadavg()
    # The tables converted and validated once, as the codec does (once per model): the
    # timings are of coding only.
    tables = rc.Tables(cdfs, lengths, offsets)
    one = rc.encode_with(sym, idx, tables)
    fns = {("one", "enc"): lambda: rc.encode_with(sym, idx, tables),
           ("one", "dec"): lambda: rc.decode_with(one, idx, tables)}
    ref_strings = rc.encode_substreams_with(sym, idx, tables, bounds)
    for threads in args.threads:
        fns[(threads, "enc")] = lambda t=threads: rc.encode_substreams_with(sym, idx, tables, bounds, threads=t)
        fns[(threads, "dec")] = lambda t=threads: rc.decode_substreams_with(ref_strings, idx, tables, bounds, threads=t)
    best, median, out = timed_interleaved(fns, args.repeat)
    results = {}
    for threads in args.threads:
        if not np.array_equal(out[(threads, "dec")], sym):
            raise SystemExit(f"substreams: round trip failed with {threads} threads")
        if out[(threads, "enc")] != ref_strings:
            raise SystemExit(f"substreams: bytes differ with {threads} threads")
        (te, ce), (td, cd) = best[(threads, "enc")], best[(threads, "dec")]
        results[threads] = (te, ce, td, cd, median[(threads, "enc")], median[(threads, "dec")])
        print(f"  {threads} thread(s): enc {te * 1e3:.1f} ms (cpu {ce * 1e3:.1f}), dec {td * 1e3:.1f} ms (cpu {cd * 1e3:.1f})", file=sys.stderr)
    t_one, t_one_d = best[("one", "enc")][0], best[("one", "dec")][0]
    load_after = os.getloadavg()
    total = sum(len(s) for s in ref_strings)
    base = args.threads[0]
    lines += [f"(c) {c}x{h}x{w} latent ({n:,} values, {len(bounds) - 1} substreams, {total:,} bytes, "
              f"{total * 8 / (h * w * 64):.3f} bpp), load average {load_before[0]:.2f} before, {load_after[0]:.2f} after:", "",
              "| coding | threads | encode Msym/s | decode Msym/s | encode speed-up | decode speed-up "
              "| encode / decode speed-up, medians | encode CPU s (cores used) | decode CPU s (cores used) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
              f"| one stream (`encode`/`decode`) | 1 | {n / t_one / 1e6:.1f} | {n / t_one_d / 1e6:.1f} | | | | | |"]
    for threads, (te, ce, td, cd, me, md) in results.items():
        b = results[base]
        lines.append(f"| {len(bounds) - 1} substreams | {threads} | {n / te / 1e6:.1f} | {n / td / 1e6:.1f} | {b[0] / te:.2f}x | "
                     f"{b[2] / td:.2f}x | {b[4] / me:.2f}x / {b[5] / md:.2f}x | {ce:.3f} ({ce / te:.2f}) | {cd:.3f} ({cd / td:.2f}) |")

    # (d) overhead at ~bpp on Kodak
    lines += ["", f"(d) Kodak at ~{args.bpp} bpp, y split by `substream_rows(48, H/8, W/8, {target})`:", "",
              "| image | quality | bpp | y + z bytes | substreams | y one stream | y substreams | overhead | + LEB128 lengths |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    sums = {"all": np.zeros(5), "near": np.zeros(5)}
    for name in args.images:
        x = lat.image(name)
        rate, quality, sym3, idx3, zb = lat.at_bpp(x, args.bpp, steps=6 if args.quick else 12)
        b3 = substream_rows(*sym3.shape, target)
        one = lat.y_bytes(sym3, idx3)
        strings = rc.encode_substreams(sym3.reshape(-1), idx3.reshape(-1), cdfs, lengths, offsets, b3)
        split = sum(len(s) for s in strings)
        lengths_extra = sum(leb128_size(len(s)) for s in strings) - leb128_size(one)
        file_bytes = one + zb
        sums["all"] += (file_bytes, one, split, lengths_extra, 1)
        if abs(rate - args.bpp) <= 0.02:
            sums["near"] += (file_bytes, one, split, lengths_extra, 1)
        lines.append(f"| kodim{name} | {quality:.2f} | {rate:.3f} | {file_bytes:,} | {len(strings)} | {one:,} | {split:,} | "
                     f"{(split - one) / file_bytes * 100:+.3f}% | {(split - one + lengths_extra) / file_bytes * 100:+.3f}% |")
        print(f"  kodim{name}: q {quality:.2f}, {rate:.3f} bpp, y {one} -> {split} bytes in {len(strings)} substreams", file=sys.stderr)
    for label, key in ((f"within 0.02 of {args.bpp} bpp", "near"), ("all", "all")):
        f, one, split, extra, count = sums[key]
        if count:
            lines.append(f"| {label} ({int(count)}) | | | {int(f):,} | | {int(one):,} | {int(split):,} | "
                         f"{(split - one) / f * 100:+.3f}% | {(split - one + extra) / f * 100:+.3f}% |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------
# per-call overhead (--overhead)
# ------------------------------------------------------------------------------------
def load_extension(path: str):
    """Another build of codec._rangecoder, imported under the name _rangecoder (beside ours)."""
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.ExtensionFileLoader("_rangecoder", path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_file_location("_rangecoder", path, loader=loader))
    loader.exec_module(module)
    return module


def overhead_paths(cdfs, lengths, offsets, baseline: str | None = None) -> dict:
    """name -> (encode(sym, idx), decode(data, idx)) for the ways a caller codes with fixed tables."""
    from codec.entropy import get_coder
    from codec.entropy.tables import EntropyTables

    paths = {}
    if baseline:
        old = load_extension(baseline)
        paths["baseline arrays"] = (lambda s, i: old.encode(s, i, cdfs, lengths, offsets),
                                    lambda d, i: old.decode(d, i, cdfs, lengths, offsets))
    paths["arrays"] = (lambda s, i: rc.encode(s, i, cdfs, lengths, offsets),
                       lambda d, i: rc.decode(d, i, cdfs, lengths, offsets))
    if hasattr(rc, "Tables"):
        t = rc.Tables(cdfs, lengths, offsets)
        paths["Tables"] = (lambda s, i: rc.encode_with(s, i, t), lambda d, i: rc.decode_with(d, i, t))
    cpu, et = get_coder("cpu"), EntropyTables.from_arrays(cdfs, lengths, offsets)
    paths["coder seam"] = (lambda s, i: cpu.encode(s, i, et), lambda d, i: cpu.decode(d, i, et))
    return paths


def run_overhead(args) -> str:
    rng = np.random.default_rng(args.seed)
    cdfs, lengths, offsets, scales = gaussian_tables()
    paths = overhead_paths(cdfs, lengths, offsets, args.baseline)
    load_before = os.getloadavg()
    rows = []
    for n in args.sizes:
        calls = max(3, min(args.calls, 4 * 10**6 // max(n, 1)))
        idx = rng.integers(0, len(scales), n).astype(np.int32)
        sym = np.round(rng.standard_normal(n) * scales[idx]).astype(np.int32)
        data = paths["arrays"][0](sym, idx)
        fns = {}
        for name, (enc, dec) in paths.items():
            if enc(sym, idx) != data or not np.array_equal(dec(data, idx), sym):
                raise SystemExit(f"overhead: {name} gives other bytes or values")
            fns[(name, "enc")] = lambda enc=enc: [enc(sym, idx) for _ in range(calls)]
            fns[(name, "dec")] = lambda dec=dec: [dec(data, idx) for _ in range(calls)]
        best, _, _ = timed_interleaved(fns, args.repeat)
        for name in paths:
            te, td = best[(name, "enc")][0] / calls, best[(name, "dec")][0] / calls
            rows.append((n, calls, name, te, td))
            print(f"  {n} values x {calls} calls, {name}: enc {te * 1e6:.1f} us/call, dec {td * 1e6:.1f} us/call", file=sys.stderr)
    load_after = os.getloadavg()
    lines = [f"{len(lengths)} GaussianConditional tables (compressai's scale table); load average {load_before[0]:.2f} "
             f"before, {load_after[0]:.2f} after ({os.cpu_count()} CPUs):", "",
             "| values per call | calls | path | encode us/call | decode us/call | encode ns/value | decode ns/value |",
             "|---:|---:|---|---:|---:|---:|---:|"]
    for n, calls, name, te, td in rows:
        per = (f"{te / n * 1e9:.1f} | {td / n * 1e9:.1f}") if n else "n/a | n/a"
        lines.append(f"| {n:,} | {calls:,} | {name} | {te * 1e6:.1f} | {td * 1e6:.1f} | {per} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--markdown", help="replace the table between BENCH (or SUBSTREAMS) markers in this file")
    ap.add_argument("--substreams", action="store_true", help="benchmark parallel substreams instead (see above)")
    ap.add_argument("--threads", default="1,2", help="thread counts for --substreams, comma-separated (default 1,2)")
    ap.add_argument("--target", type=int, default=None, help="target values per substream (default: SUBSTREAM_SYMBOLS)")
    ap.add_argument("--images", default=",".join(f"{i:02d}" for i in range(1, 25)),
                    help="Kodak image numbers for the overhead, comma-separated (default: all 24)")
    ap.add_argument("--bpp", type=float, default=0.25, help="rate of the substream measurements (default 0.25)")
    ap.add_argument("--overhead", action="store_true", help="measure the per-call overhead instead (see above)")
    ap.add_argument("--sizes", default="1000,294912", help="values per call for --overhead, comma-separated")
    ap.add_argument("--calls", type=int, default=2000, help="calls per round for --overhead (fewer for large sizes)")
    ap.add_argument("--baseline", help="--overhead: another build's codec/_rangecoder*.so, timed beside this one")
    args = ap.parse_args()

    if args.overhead:
        args.sizes = [int(n) for n in args.sizes.split(",")]
        md = run_overhead(args)
        print(md)
        if args.markdown:
            replace_between(args.markdown, "OVERHEAD", md)
        return 0

    if args.substreams:
        from codec.entropy.substreams import SUBSTREAM_SYMBOLS

        args.threads = [int(t) for t in args.threads.split(",")]
        args.images = [f"{int(i):02d}" for i in args.images.split(",")]
        if args.quick:
            args.images = args.images[:2]
        args.target = args.target or SUBSTREAM_SYMBOLS
        md = run_substreams(args)
        print(md)
        if args.markdown:
            replace_between(args.markdown, "SUBSTREAMS", md)
        return 0

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
        replace_between(args.markdown, "BENCH", md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
