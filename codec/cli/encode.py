"""`codec encode IN OUT`: compress an image into a bitstream file."""
from __future__ import annotations

import argparse
from pathlib import Path

from codec.cli._common import add_device, check_output, report_conversions, timed


def register(subparsers) -> None:
    p = subparsers.add_parser("encode", help="compress an image into a .bin file",
                              description="Compress an image (any format Pillow reads) into a codec file.")
    p.add_argument("input", help="image to compress")
    p.add_argument("output", help="bitstream file to write (written atomically)")
    p.add_argument("--model", default="walloc", help="shipped model name or a .safetensors weights file (default walloc)")
    p.add_argument("--quality", type=float, default=None, help="rate/quality trade-off, fractional allowed (see `codec models`)")
    add_device(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codec.api import encode
    from codec.bitstream import unpack
    from codec.fileio import atomic_write

    check_output(args.input, args.output)
    with report_conversions("encode"):
        data, seconds = timed(encode, args.input, model=args.model, quality=args.quality, device=args.device)
    atomic_write(args.output, lambda tmp: Path(tmp).write_bytes(data))
    header, _ = unpack(data)
    bpp = len(data) * 8 / (header.width * header.height)
    print(f"{args.output}: {len(data)} bytes, {bpp:.4f} bpp ({header.width}x{header.height}, "
          f"model {header.model}, quality {header.quality:g}, {seconds:.2f} s)")
    return 0
