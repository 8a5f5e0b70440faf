"""Time and peak memory of ``codec encode`` / ``codec decode`` on large images, per thread count and tile size.

    python tools/bench_large_images.py ../shared/data/train --sizes 3000x2000,6000x4000 --threads 1,2
    python tools/bench_large_images.py ../shared/data/train --sizes 6000x4000 --threads 2 --tiles default,256,2048

For each size, an image is made from the photographs of FOLDER by ``tools/make_large_image.py``
(kept in ``--workdir`` and reused), then each thread count runs ``python -m codec encode IMAGE
OUT.bin --threads N [--tile T]`` and ``python -m codec decode OUT.bin OUT.png --threads N [--tile
T]`` under ``/usr/bin/time -v`` (wall time of the whole command, PNG writing included, and its
peak RSS). The files and decoded PNGs of every thread count and tile size must be
byte-identical; a difference stops the run. Prints a markdown table with the issue's
memory bound (3 x the 8-bit image + 600 MB) beside each peak. Wall times depend on what else
the machine runs: give the load (printed) with any figure.
"""
from __future__ import annotations

import argparse
import filecmp
import os
import re
import subprocess
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent


def timed_run(command: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of ``command`` under ``/usr/bin/time -v``; exits on failure."""
    run = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"failed ({run.returncode}): {' '.join(command)}\n{run.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", run.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    return hours * 3600 + minutes * 60 + seconds, int(rss.group(1)) * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="photographs to tile into the test images")
    parser.add_argument("--sizes", default="3000x2000,6000x4000", help="WIDTHxHEIGHT,... (default 6 and 24 MP)")
    parser.add_argument("--threads", default="1,2", help="thread counts to compare (default 1,2)")
    parser.add_argument("--tiles", default="default", help="tile sizes to compare (--tile values; default: the model's own)")
    parser.add_argument("--model", default="walloc")
    parser.add_argument("--quality", default="3")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/codec-bench-large"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    threads = [int(t) for t in args.threads.split(",")]
    tiles = args.tiles.split(",")
    print(f"load average before: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    print("| image | threads | tile | encode wall | encode peak RSS | decode wall | decode peak RSS | bound |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.lower().split("x"))
        image = args.workdir / f"big_{width}x{height}.png"
        if not image.exists():
            subprocess.run([sys.executable, str(TOOLS / "make_large_image.py"), str(args.folder), str(image), size],
                           check=True)
        bound = 3 * width * height * 3 + 600e6
        outputs = []
        for n in threads:
            for tile in tiles:
                stem = args.workdir / f"{Path(args.model).stem}_{size}_q{args.quality}_t{n}_{tile}"
                codec = [sys.executable, "-m", "codec"]
                options = ["--threads", str(n)] + ([] if tile == "default" else ["--tile", tile])
                for suffix in (".bin", ".png"):  # no output of an earlier run can pass the comparison
                    Path(f"{stem}{suffix}").unlink(missing_ok=True)
                enc_s, enc_rss = timed_run([*codec, "encode", str(image), f"{stem}.bin", "--model", args.model,
                                            "--quality", args.quality, *options])
                weights = ["--model", args.model] if args.model.endswith(".safetensors") else []  # not shipped
                dec_s, dec_rss = timed_run([*codec, "decode", f"{stem}.bin", f"{stem}.png", *weights, *options])
                outputs.append(stem)
                for suffix in (".bin", ".png"):
                    if not filecmp.cmp(f"{outputs[0]}{suffix}", f"{stem}{suffix}", shallow=False):
                        sys.exit(f"{stem}{suffix} differs from {outputs[0]}{suffix}: threads or tiles changed the result")
                mp = width * height / 1e6
                print(f"| {width}×{height} ({mp:.0f} MP) | {n} | {tile} | {enc_s:.1f} s | {enc_rss / 1e9:.2f} GB | "
                      f"{dec_s:.1f} s | {dec_rss / 1e9:.2f} GB | {bound / 1e9:.2f} GB |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}", file=sys.stderr)


if __name__ == "__main__":
    from codec.cli._common import run_tool

    raise SystemExit(run_tool(main, "bench_large_images"))
