#!/usr/bin/env python
"""BD-rate of walloc with symmetric instead of periodic wavelet borders.

By default the shipped weights themselves, only the border rule of the wavelet packet
transform changed (no fine-tuning; docs/large-images.md); with ``--candidate`` a weights
file fine-tuned for symmetric borders instead. The reference is always the shipped weights
with their periodic borders. Real files, pooled bpp, mean PSNR per quality.

Usage: python tools/boundary_cost.py FOLDER [--qualities 1,2.5,4,6] [--candidate WEIGHTS]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    from codec import zoo
    from codec.models.weights import build_model, load_weights
    from codec.training.selection import code_images, curve_bd_rate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder of PNG images (Kodak)")
    parser.add_argument("--qualities", default="1,2.5,4,6")
    parser.add_argument("--candidate", help="weights with symmetric borders to compare (default: the shipped ones)")
    args = parser.parse_args(argv)
    files = sorted(args.folder.glob("*.png"))
    if not files:
        print(f"no PNG images in {args.folder}", file=sys.stderr)
        return 1
    entry = zoo.entry_for("walloc")
    periodic = load_weights(entry.path)
    if args.candidate:
        symmetric = load_weights(args.candidate)
        if symmetric.wpt.boundary != "symmetric":
            print(f"{args.candidate} does not use symmetric borders", file=sys.stderr)
            return 1
    else:
        symmetric = build_model("walloc", dict(entry.config, boundary="symmetric"))
        symmetric.load_state_dict(periodic.state_dict())
        symmetric.eval()
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    qualities = [float(q) for q in args.qualities.split(",")]
    reference, candidate = code_images(periodic, images, qualities), code_images(symmetric, images, qualities)
    for q in qualities:
        print(f"quality {q:g}: periodic {reference[q][0]:.4f} bpp {reference[q][1]:.3f} dB, "
              f"symmetric {candidate[q][0]:.4f} bpp {candidate[q][1]:.3f} dB")
    which = args.candidate or "the same weights"
    print(f"BD-rate of symmetric borders ({which}) against {entry.path.name} ({entry.sha256[:8]}) with periodic "
          f"borders, {len(images)} images: {curve_bd_rate(reference, candidate):+.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
