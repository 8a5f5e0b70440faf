"""Compare latent-refinement schedules on held-out training images (never Kodak).

    python tools/tune_refine.py --data ../shared/data/train '{"steps": 60, "lr": 0.01}' '{"steps": 60, "lr": 0.02}'
    python tools/tune_refine.py --data ../shared/data/train --effort 2   # a shipped effort level

For each schedule (the fields of :class:`codec.encoding.effort.Schedule`, as JSON) it refines
every chosen held-out image (the trainer's ``split_holdout``) at each quality, codes the
result to real bytes, decodes it, and prints the mean change against effort 0 of the RD cost
``lambda * 255^2 * MSE + bpp``, of the bpp and of the PSNR, a local BD-rate estimate, and the
seconds per refinement.

The BD-rate estimate is what a BD-rate against effort 0 measures, taken at one point: the
image's own effort-0 curve is locally ``PSNR = a + s * ln(bpp)``, with the slope ``s`` from
effort-0 files at the quality +- 0.5, so a refined file of rate ``b`` and PSNR ``p`` needs
``100 * (ln(b / b0) - (p - p0) / s)`` per cent more bits than that curve at the same PSNR.
A lower RD cost at the model's ``lambda`` need not be a lower BD-rate: a refinement can trade
distortion for bits along the model's own curve (docs/effort.md).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time

import torch


def main() -> int:
    from codec import api
    from codec.encoding.effort import EFFORTS, Schedule
    from codec.encoding.refine import refine_latents
    from codec.image_io import load_image
    from codec.training.data import list_images, split_holdout

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("schedules", nargs="*", help="schedules as JSON objects")
    p.add_argument("--effort", type=int, action="append", default=[], help="also a shipped effort level")
    p.add_argument("--data", required=True, help="the training folder (its held-out split is used)")
    p.add_argument("--images", default="0,2,5,7", help="indexes into the held-out images (default 0,2,5,7)")
    p.add_argument("--holdout", type=int, default=8, help="held-out images of the trainer's split (default 8)")
    p.add_argument("--qualities", default="2,5")
    p.add_argument("--model", default="walloc")
    args = p.parse_args()
    schedules = [Schedule(**json.loads(text)) for text in args.schedules] + [EFFORTS[e] for e in args.effort]
    torch.set_num_threads(api.CPU_THREADS)
    net = api.resolve_model(args.model)
    _, held_out = split_holdout(list_images(args.data), args.holdout)
    images = [held_out[int(i)] for i in args.images.split(",")]
    qualities = [float(q) for q in args.qualities.split(",")]

    def measure(x0, x, quality, y, z):
        out = net.compress_latents(y, z)
        size = sum(len(part) for per_image in out["strings"].values() for part in per_image[0])
        height, width = x0.shape[-2:]
        x_hat = net.decompress(out["strings"], out["shapes"], quality)["x_hat"][..., :height, :width].clamp(0, 1)
        mse = ((x_hat * 255).round() / 255 - x0).pow(2).mean().item()
        bpp = 8 * size / (height * width)
        return bpp, float(net.lmbda(torch.tensor([quality]))) * 255**2 * mse + bpp, 10 * math.log10(1 / mse)

    def slope(x0, x, quality):
        """d PSNR / d ln(bpp) of the image's effort-0 files about ``quality``."""
        points = []
        for q in (quality - 0.5, quality + 0.5):
            with torch.inference_mode():
                y, z = net.analyse(x, q)
            bpp, _, psnr = measure(x0, x, q, y, z)
            points.append((math.log(bpp), psnr))
        return (points[1][1] - points[0][1]) / (points[1][0] - points[0][0])

    inputs = []
    for path in images:
        x0 = torch.from_numpy(load_image(str(path)).rgb.copy()).permute(2, 0, 1)[None].float() / 255
        x, _, _ = api._pad(x0, net.pad_multiple)
        for q in qualities:
            with torch.inference_mode():
                y, z = net.analyse(x, q)
            inputs.append((x0, x, q, y, z, measure(x0, x, q, y, z), slope(x0, x, q)))
    print(f"{len(images)} held-out images x qualities {qualities}, model {args.model}, 1 thread")
    for schedule in schedules:
        cost, bpp, dpsnr, bd, seconds = [], [], [], [], []
        for x0, x, q, y, z, (bpp0, cost0, psnr0), s in inputs:
            start = time.perf_counter()
            yr, zr = refine_latents(net, x, y, z, q, schedule, x0.shape[-2], x0.shape[-1])
            seconds.append(time.perf_counter() - start)
            b, c, d = measure(x0, x, q, yr, zr)
            cost.append(100 * (c / cost0 - 1))
            bpp.append(100 * (b / bpp0 - 1))
            dpsnr.append(d - psnr0)
            bd.append(100 * (math.log(b / bpp0) - (d - psnr0) / s))
        print(f"{schedule}: RD cost {statistics.mean(cost):+.2f} %, bpp {statistics.mean(bpp):+.2f} %, "
              f"PSNR {statistics.mean(dpsnr):+.3f} dB, BD-rate estimate {statistics.mean(bd):+.2f} %, "
              f"{statistics.median(seconds):.1f} s per refinement", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
