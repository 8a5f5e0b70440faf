#!/usr/bin/env python
"""Median encode and decode seconds of models on the same images, timed in turns.

Each image is coded by every model in turn (model A, model B, A, B, ...), weights loaded
before timing, so that a change of the machine's load falls on every model alike. Reports,
per model, the median ``codec.api.encode`` and ``codec.api.decode`` seconds and the mean
file size. A benchmark, not a test: the figures depend on the machine and its load.

Usage: python tools/time_models.py MODEL [MODEL ...] [--images DIR] [--limit 6] [--quality 3] [--repeat 3]
(MODEL: a shipped model's name or a weights file; DIR defaults to ../shared/data/kodak)
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codec.cli._common import run_tool  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", metavar="MODEL")
    p.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    p.add_argument("--limit", type=int, default=6, help="first N images of the folder (default 6)")
    p.add_argument("--quality", type=float, default=3.0)
    p.add_argument("--repeat", type=int, default=3, help="turns per image (default 3)")
    args = p.parse_args()

    import numpy as np

    from codec import api
    from codec.fileio import list_images
    from codec.image_io import load_image

    folder = Path(args.images)
    if not folder.is_dir():
        print(f"no image folder at {folder}: nothing to time")
        return 0
    images = [load_image(path).rgb for path in list_images(folder)[: args.limit]]
    nets = {name: api.resolve_model(name) for name in args.models}
    times = {name: ([], [], []) for name in nets}
    for image in images:
        for _ in range(args.repeat):
            for name, net in nets.items():
                start = time.perf_counter()
                data = api.encode(image, model=net, quality=args.quality)
                middle = time.perf_counter()
                api.decode(data, model=net)
                end = time.perf_counter()
                encode_s, decode_s, sizes = times[name]
                encode_s.append(middle - start)
                decode_s.append(end - middle)
                sizes.append(len(data))
    print(f"{len(images)} images of {folder}, quality {args.quality:g}, {args.repeat} turns each:")
    print("| model | encode s (median) | decode s (median) | mean bytes |")
    print("| --- | ---: | ---: | ---: |")
    for name, (encode_s, decode_s, sizes) in times.items():
        print(f"| {name} | {statistics.median(encode_s):.3f} | {statistics.median(decode_s):.3f} | "
              f"{np.mean(sizes):,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main, "time_models"))
