"""`codec decode IN OUT`: decode a bitstream file into an image."""
from __future__ import annotations

import argparse

from codec.cli._common import add_device, check_output, timed


def register(subparsers) -> None:
    p = subparsers.add_parser("decode", help="decode a .bin file into an image",
                              description="Decode a codec file; the output format follows OUT's extension (.png, ...).")
    p.add_argument("input", help="bitstream file")
    p.add_argument("output", help="image to write (written atomically), e.g. out.png")
    p.add_argument("--model", default=None, help="weights file, for files coded with a model that does not ship")
    add_device(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from codec.api import decode
    from codec.image_io import save_image

    check_output(args.input, args.output)
    data = Path(args.input).read_bytes()
    image, seconds = timed(decode, data, device=args.device, model=args.model)
    save_image(image, args.output)
    print(f"{args.output}: {image.width}x{image.height} {image.mode} ({seconds:.2f} s)")
    return 0
