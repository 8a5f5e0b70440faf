"""`codec decode IN OUT`: decode a bitstream file into an image."""
from __future__ import annotations

import argparse

from codec.cli._common import add_device, check_input, check_output, read_input, status_stream, timed, write_output


def register(subparsers) -> None:
    p = subparsers.add_parser("decode", help="decode a .bin file into an image",
                              description="Decode a codec file; the output format follows OUT's extension "
                                          "(.png, ...). '-' reads standard input / writes PNG to standard output.")
    p.add_argument("input", help="bitstream file, or - for standard input")
    p.add_argument("output", help="image to write (written atomically), e.g. out.png, or - for PNG on stdout")
    p.add_argument("--model", default=None, help="weights file, for files coded with weights that do not ship")
    add_device(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codec.api import decode
    from codec.image_io import image_format

    check_input(args.input)
    check_output(args.output, [args.input], "image")
    data = read_input(args.input)
    image, seconds = timed(decode, data, device=args.device, model=args.model)
    fmt = "PNG" if args.output == "-" else image_format(args.output)
    write_output(args.output, lambda target: image.save(target, format=fmt))
    print(f"{args.output}: {image.width}x{image.height} {image.mode} ({seconds:.2f} s)", file=status_stream(args.output))
    return 0
