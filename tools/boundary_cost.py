#!/usr/bin/env python
"""BD-rate of walloc with symmetric instead of periodic wavelet borders.

The reference is a weights file (``--reference``, default the shipped ``walloc``) run with
periodic borders; the candidate is the same weights with only the border rule of the
wavelet packet transform changed (no fine-tuning; docs/large-images.md), or with
``--candidate`` a weights file fine-tuned for symmetric borders. Real files, pooled bpp,
mean PSNR per quality.

Usage: python tools/boundary_cost.py FOLDER [--qualities 1,2.5,4,6] [--reference WEIGHTS]
                                     [--candidate WEIGHTS] [--holdout]
(--holdout: FOLDER is the training data and its 8 held-out images are used, as in selection.)
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
    parser.add_argument("--holdout", action="store_true", help="use the held-out images of the training data FOLDER")
    parser.add_argument("--reference", help="weights run with periodic borders (default: the shipped walloc)")
    parser.add_argument("--candidate", help="weights fine-tuned for symmetric borders (default: the reference weights, borders switched)")
    args = parser.parse_args(argv)
    if args.holdout:
        from codec.training.export import holdout_images

        images = holdout_images({"train_config": {"holdout": 8}}, str(args.folder))
    else:
        files = sorted(args.folder.glob("*.png"))
        if not files:
            print(f"no PNG images in {args.folder}", file=sys.stderr)
            return 1
        images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    entry = zoo.entry_for(args.reference or "walloc")
    weights = load_weights(entry.path)

    def with_boundary(boundary: str):
        model = build_model("walloc", dict(entry.config, boundary=boundary))
        model.load_state_dict(weights.state_dict())
        return model.eval()

    periodic = with_boundary("periodic")
    if args.candidate:
        symmetric = load_weights(args.candidate)
        if symmetric.wpt.boundary != "symmetric":
            print(f"{args.candidate} does not use symmetric borders", file=sys.stderr)
            return 1
    else:
        symmetric = with_boundary("symmetric")
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
