"""`codec roundtrip [IMAGE]`: encode and decode an image, print rate and PSNR."""
from __future__ import annotations

import argparse
import os
from importlib import resources

from pathlib import Path

from codec.cli._common import (add_device, check_input, check_output, progress_wanted, report_conversions, timed,
                               write_output)
from codec.cli.encode import effort_level
from codec.errors import InputError
from codec.zoo import DEFAULT_MODEL


def sample_image() -> str:
    """Path of the bundled sample photograph (public domain, see codec/data/README.md)."""
    return str(resources.files("codec") / "data" / "astronaut.png")


def register(subparsers) -> None:
    p = subparsers.add_parser("roundtrip", help="encode + decode an image and report bpp and PSNR",
                              description="Encode and decode an image (default: the bundled sample) "
                                          "and print its file size, bpp, PSNR and timings.")
    p.add_argument("image", nargs="?", default=None, help="image (default: bundled astronaut.png)")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL, help=f"model name or .safetensors file (default {DEFAULT_MODEL})")
    p.add_argument("-q", "--quality", type=float, default=None, help="quality (default: the model's, 3 for the shipped ones)")
    p.add_argument("-e", "--effort", type=effort_level, default=0, metavar="N",
                   help="encoder effort, as for `codec encode` (default 0)")
    p.add_argument("--save", default=None, metavar="PREFIX", help="also write PREFIX.bin and PREFIX.png")
    add_device(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from codec.api import decode, encode, resolve_model
    from codec.bitstream import unpack
    from codec.evaluation import metrics
    from codec.image_io import load_image, save_image

    path = args.image or sample_image()
    check_input(path)
    if args.save:
        if args.save.endswith(("/", os.sep)) or os.path.isdir(args.save):
            raise InputError(f"--save {args.save}: a folder; give a file prefix such as {os.path.join(args.save, 'photo')}")
        check_output(args.save + ".bin", [path], "bitstream_any")
        check_output(args.save + ".png", [path], "image")
    resolve_model(args.model, args.device)  # load the weights first: the times below are coding only
    with report_conversions("roundtrip"):
        original = load_image(path)
        data, t_enc = timed(encode, original.rgb if not original.grayscale else original.rgb[:, :, 0],
                            model=args.model, quality=args.quality, device=args.device, threads=args.threads,
                            tile=args.tile, effort=args.effort, progress=progress_wanted())
    image, t_dec = timed(decode, data, device=args.device, model=args.model, threads=args.threads, tile=args.tile)
    header, _ = unpack(data)
    psnr = metrics.psnr(original.rgb, np.asarray(image.convert("RGB")))
    bpp = metrics.bpp(len(data), header.width, header.height)
    print(f"image     {path} ({header.width}x{header.height})")
    print(f"model     {header.model}, quality {header.quality:g}" + (f", effort {args.effort}" if args.effort else ""))
    print(f"size      {len(data)} bytes = {bpp:.4f} bpp")
    print(f"PSNR-RGB  {psnr:.2f} dB")
    print(f"time      encode {t_enc:.2f} s, decode {t_dec:.2f} s (weights already loaded)")
    if args.save:
        write_output(args.save + ".bin", lambda tmp: Path(tmp).write_bytes(data))
        save_image(image, args.save + ".png")
        print(f"wrote     {args.save}.bin, {args.save}.png")
    return 0
