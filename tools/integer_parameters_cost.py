#!/usr/bin/env python
"""What integer entropy parameters cost: BD-rate of integer vs float parameters on real files.

For every image of a folder and every quality, encodes a real file with the model's float
hyper-synthesis and one with its exact integer form (``codec.api.encode_tensor(...,
integer_parameters=...)``), decodes both, and reports the BD-rate of the integer curve over
the float one (mean bpp and mean PSNR over the images, each file's header counted), plus the
largest difference of the means and the share of latents whose table index differs between
the two forms. Used for the figures in docs/bitstream.md ("Integer entropy parameters").

Usage: python tools/integer_parameters_cost.py ../shared/data/kodak [--model walloc] [--qualities 1 2 3 4 5 6]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from codec import api
from codec.entropy.compressai_models import scale_indexes
from codec.evaluation.bd import bd_rate
from codec.evaluation.metrics import psnr
from codec.image_io import load_image
from codec.latent_codecs.integer_parameters import derive_integer_parameters


def parameter_differences(net, x: torch.Tensor, quality: float) -> tuple[float, int, int]:
    """(max |integer mean - float mean|, latents with another table index, latents) of one image."""
    with torch.inference_mode():
        x, _, _ = api._pad(x, net.pad_multiple)
        _, z = net.analyse(x, quality)
        medians = net.entropy_bottleneck._get_medians()
        symbols = net.entropy_bottleneck.quantize(z, "symbols", medians).int()
        scales, means = net._hyper_parameters(symbols + medians)
        indexes, int_means = derive_integer_parameters(net.h_s, net.entropy_bottleneck, net.gaussian_conditional)(symbols)
        float_indexes = scale_indexes(net.gaussian_conditional, scales)
    return float((int_means - means).abs().max()), int((indexes != float_indexes).sum()), indexes.numel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--model", default="walloc")
    parser.add_argument("--qualities", type=float, nargs="+", default=[1, 2, 3, 4, 5, 6])
    args = parser.parse_args(argv)
    net = api.resolve_model(args.model)
    paths = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".ppm"))
    curves = {False: ([], []), True: ([], [])}
    worst_mean, moved, total = 0.0, 0, 0
    for quality in args.qualities:
        sums = {False: [0.0, 0.0], True: [0.0, 0.0]}
        for path in paths:
            rgb = load_image(path).rgb
            x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255
            for integer in (False, True):
                data = api.encode_tensor(x, net, quality, integer_parameters=integer)[0]
                decoded = (api.decode_to_tensor([data], model=net)[0] * 255).round().byte().permute(1, 2, 0).numpy()
                sums[integer][0] += len(data) * 8 / (rgb.shape[0] * rgb.shape[1])
                sums[integer][1] += psnr(rgb, decoded)
            diff, n_moved, n = parameter_differences(net, x, quality)
            worst_mean, moved, total = max(worst_mean, diff), moved + n_moved, total + n
        for integer in (False, True):
            curves[integer][0].append(sums[integer][0] / len(paths))
            curves[integer][1].append(sums[integer][1] / len(paths))
        print(f"quality {quality:g}: float {curves[False][0][-1]:.4f} bpp {curves[False][1][-1]:.3f} dB, "
              f"integer {curves[True][0][-1]:.4f} bpp {curves[True][1][-1]:.3f} dB", flush=True)
    value, reason = bd_rate(*curves[False], *curves[True])
    print(f"{len(paths)} images, model {args.model}: BD-rate of integer vs float parameters "
          f"{'n/a (' + reason + ')' if value is None else f'{value:+.3f} %'}")
    print(f"max |mean difference| {worst_mean:.2e}; table index differs for {moved} of {total} latents "
          f"({100 * moved / total:.4f} %)")
    return 0


if __name__ == "__main__":
    from codec.cli._common import run_tool

    raise SystemExit(run_tool(main, "integer_parameters_cost"))
