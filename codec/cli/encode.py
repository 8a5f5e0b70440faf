"""`codec encode IN OUT`: compress an image into a bitstream file."""
from __future__ import annotations

import argparse
from pathlib import Path

from codec.cli._common import (add_device, check_input, check_output, read_input, report_conversions,
                               status_stream, timed, write_output)


def register(subparsers) -> None:
    p = subparsers.add_parser("encode", help="compress an image into a .bin file",
                              description="Compress an image (any format Pillow reads) into a codec file. "
                                          "'-' reads standard input / writes standard output.")
    p.add_argument("input", help="image to compress, or - for standard input")
    p.add_argument("output", help="bitstream file to write (written atomically; not an image extension), or -")
    p.add_argument("--model", default="walloc", help="shipped model name or a .safetensors weights file (default walloc)")
    p.add_argument("--quality", type=float, default=None, help="rate/quality trade-off, fractional allowed (see `codec models`)")
    add_device(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codec.api import encode
    from codec.bitstream import unpack

    check_input(args.input)
    check_output(args.output, [args.input], "bitstream")
    source = read_input(args.input) if args.input == "-" else args.input
    with report_conversions("encode"):
        data, seconds = timed(encode, source, model=args.model, quality=args.quality, device=args.device)
    write_output(args.output, lambda target: Path(target).write_bytes(data))
    header, _ = unpack(data)
    bpp = len(data) * 8 / (header.width * header.height)
    print(f"{args.output}: {len(data)} bytes, {bpp:.4f} bpp ({header.width}x{header.height}, "
          f"model {header.model}, quality {header.quality:g}, {seconds:.2f} s)", file=status_stream(args.output))
    return 0
