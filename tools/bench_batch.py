#!/usr/bin/env python
"""Files per second of the `codec` CLI on a folder of images: one call per file vs batch mode.

Modes, each timed end to end by wall clock (process start-up, imports and model loading
included, as a user would see them):
  (a) ``codec encode IN OUT``, one subprocess per file;
  (b) ``codec encode DIR -o OUT --jobs 1``, one subprocess for the folder;
  (c) ``codec encode DIR -o OUT --jobs 2`` (and any other --jobs given);
then the same for ``codec decode``, each mode decoding its own bitstreams. The outputs of
every mode are compared: the bitstreams and the decoded images must be identical.

The default folder is ../shared/data/kodak next to the repository; if it is absent the
script says so and exits 0. This is a benchmark, not a test: numbers depend on the machine
and on its load (the script prints the load average before and after).

Usage: python tools/bench_batch.py [FOLDER] [--limit N] [--jobs 1,2] [--model walloc] [--quality Q]
"""
from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FOLDER = ROOT.parent / "shared" / "data" / "kodak"


def codec_command() -> list[str]:
    """The `codec` console script next to this interpreter, else ``python -m codec``."""
    script = Path(sys.executable).parent / "codec"
    return [str(script)] if script.exists() else [sys.executable, "-m", "codec"]


def run(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bench_batch: {' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    if names != sorted(p.name for p in b.iterdir()):
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    return not mismatch and not errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=str(DEFAULT_FOLDER), help=f"images (default {DEFAULT_FOLDER})")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N images (sorted by name)")
    parser.add_argument("--jobs", default="1,2", help="comma-separated --jobs values for the batch rows (default 1,2)")
    parser.add_argument("--model", default="walloc", help="model name or weights file (default walloc)")
    parser.add_argument("--quality", default=None, help="quality (default: the model's default)")
    args = parser.parse_args(argv)

    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"bench_batch: skipped: image folder {folder} not found (give one as the first argument)")
        return 0
    from PIL import Image

    extensions = set(Image.registered_extensions())
    images = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                    and p.suffix.lower() in extensions)[: args.limit]
    if not images:
        print(f"bench_batch: skipped: no images in {folder}")
        return 0
    jobs = [int(j) for j in args.jobs.split(",") if j.strip()]
    codec = codec_command()
    options = ["--model", args.model] + (["--quality", args.quality] if args.quality else [])

    print(f"{len(images)} images from {folder}; model {args.model}; {' '.join(codec)}; "
          f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"load average {os.getloadavg()[0]:.2f}")
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench_batch.") as tmp_name:
        tmp = Path(tmp_name)
        inputs = tmp / "in"
        inputs.mkdir()
        for image in images:  # a folder holding exactly the images benchmarked
            shutil.copy(image, inputs / image.name)
        sources = sorted(inputs.iterdir())
        modes = [("one call per file", None)] + [(f"batch --jobs {j}", j) for j in jobs]
        for label, n in modes:
            bins, pngs = tmp / f"bin-{n}", tmp / f"png-{n}"
            if n is None:
                bins.mkdir()
                pngs.mkdir()
                enc = sum(run([*codec, "encode", str(s), str(bins / (s.stem + ".bin")), *options]) for s in sources)
                dec = sum(run([*codec, "decode", str(b), str(pngs / (b.stem + ".png")), "--model", args.model])
                          for b in sorted(bins.iterdir()))
            else:
                enc = run([*codec, "encode", str(inputs), "-o", str(bins), "--jobs", str(n), *options])
                dec = run([*codec, "decode", str(bins), "-o", str(pngs), "--jobs", str(n), "--model", args.model])
            rows.append((label, enc, dec))
            print(f"  {label}: encode {enc:.1f} s, decode {dec:.1f} s", flush=True)
        reference = modes[0][1]
        identical = all(same_files(tmp / f"bin-{reference}", tmp / f"bin-{n}")
                        and same_files(tmp / f"png-{reference}", tmp / f"png-{n}") for _, n in modes[1:])

    count = len(images)
    print()
    print(f"| mode ({count} images) | encode s | encode files/s | decode s | decode files/s |")
    print("|---|---:|---:|---:|---:|")
    for label, enc, dec in rows:
        print(f"| {label} | {enc:.1f} | {count / enc:.3f} | {dec:.1f} | {count / dec:.3f} |")
    print()
    print(f"outputs identical across modes: {'yes' if identical else 'NO'}; "
          f"load average after: {os.getloadavg()[0]:.2f}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
