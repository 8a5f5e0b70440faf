"""Rate-control accuracy on a folder of images: achieved / target for bpp and PSNR targets.

    python tools/bench_rate_control.py /path/to/kodak --bpp 0.25,0.5,1.0 --psnr 32

For every image and target, ``codec.encode(..., bpp=T)`` (or ``psnr=T``) searches the
quality with real encodes; the table gives, per target, how many images met it, the
achieved/target ratio (median, min, max; for PSNR the achieved dB minus the target), the
chosen qualities and the median encode seconds (search included).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from PIL import Image

import codec
from codec import bitstream
from codec.errors import InputError
from codec.evaluation import metrics
from codec.fileio import list_images


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--model", default="walloc")
    p.add_argument("--bpp", default="0.25,0.5,1.0", help="comma-separated bpp targets ('' for none)")
    p.add_argument("--psnr", default="32", help="comma-separated PSNR targets in dB ('' for none)")
    p.add_argument("--limit", type=int, default=0, help="only the first N images")
    args = p.parse_args()
    from codec.api import resolve_model
    from codec.encoding.rate_control import make_target

    resolve_model(args.model)  # an unknown model is one error, not "unreachable" for every target
    files = list_images(args.folder)[: args.limit or None]
    if not files:
        print(f"no images in {args.folder}", file=sys.stderr)
        return 1
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    targets = [("bpp", float(v)) for v in args.bpp.split(",") if v] + [("psnr", float(v)) for v in args.psnr.split(",") if v]
    for kind, value in targets:
        make_target(kind, value)  # a negative or non-finite target is refused before any encode
    print(f"| target | met | achieved {'/ target':<9} median (min..max) | quality median (min..max) | encode s (median) |")
    print("| --- | ---: | --- | --- | ---: |")
    for kind, value in targets:
        ratios, qualities, seconds, met = [], [], [], 0
        for rgb in images:
            start = time.perf_counter()
            try:
                data = codec.encode(rgb, model=args.model, **{kind: value})
            except InputError:
                continue
            seconds.append(time.perf_counter() - start)
            header, _ = bitstream.unpack(data)
            if kind == "bpp":
                achieved = metrics.bpp(len(data), rgb.shape[1], rgb.shape[0])
                ratios.append(achieved / value)
                met += achieved <= value
            else:
                achieved = metrics.psnr(rgb, np.asarray(codec.decode(data).convert("RGB")))
                ratios.append(achieved - value)
                met += achieved >= value
            qualities.append(header.quality)
        if not ratios:
            print(f"| {kind} {value:g} | 0/{len(images)} | unreachable for every image | | |")
            continue
        unit = "ratio" if kind == "bpp" else "dB over"
        print(f"| {kind} {value:g} | {met}/{len(images)} | {unit} {statistics.median(ratios):.3f} "
              f"({min(ratios):.3f}..{max(ratios):.3f}) | {statistics.median(qualities):.2f} "
              f"({min(qualities):.2f}..{max(qualities):.2f}) | {statistics.median(seconds):.2f} |")
    return 0


if __name__ == "__main__":
    from codec.cli._common import run_tool

    raise SystemExit(run_tool(main, "bench_rate_control"))
