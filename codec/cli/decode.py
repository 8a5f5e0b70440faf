"""`codec decode IN OUT`: decode a bitstream file into an image;
`codec decode IN... -o OUTDIR`: decode many (see :mod:`codec.cli.batch`)."""
from __future__ import annotations

import argparse

from codec.cli._common import (add_device, check_input, check_output, progress_wanted, read_bitstream,
                               status_stream, timed, warn_if_lossy, write_output)


def register(subparsers) -> None:
    from codec.cli.batch import add_batch_options

    p = subparsers.add_parser(
        "decode", help="decode a .bin file into an image (or many, with -o OUTDIR)",
        usage="%(prog)s [options] INPUT OUTPUT\n       %(prog)s [options] INPUT... -o OUTDIR [--jobs N] [--format EXT]",
        description="Decode a codec file; the output format follows OUT's extension "
                    "(.png, ...). '-' reads standard input / writes PNG to standard output. With -o OUTDIR, "
                    "every INPUT (.bin files, and folders of them) is decoded into OUTDIR/<stem>.png "
                    "(or --format); each file's line, then a total (files, bytes, mean bpp, files/s), go to "
                    "standard output, a progress bar to standard error; files that fail are listed at the end "
                    "and the exit status is 1.")
    p.add_argument("paths", nargs="+", metavar="INPUT",
                   help="without -o: INPUT OUTPUT, the bitstream file (or - for standard input) and the image "
                        "to write (written atomically), e.g. out.png, or - for PNG on stdout. "
                        "With -o: .bin files, or folders of them")
    p.add_argument("-m", "--model", default=None, help="weights file, for files coded with weights that do not ship")
    add_device(p)
    add_batch_options(p, "decode")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codec.cli.batch import dispatch

    from codec.band_pool import threads_for_bands
    from codec.tiling import tiles_of

    with threads_for_bands(args.threads), tiles_of(args.tile):
        return dispatch("decode", args, decode_one, "files")


def decode_one(args: argparse.Namespace) -> int:
    from codec.api import decode, decode_png
    from codec.image_io import image_format

    check_input(args.input)
    check_output(args.output, [args.input], "image")
    data = read_bitstream(args.input)
    fmt = "PNG" if args.output == "-" else image_format(args.output)
    warn_if_lossy("decode", fmt)
    if fmt == "PNG":  # written as the bands are decoded: the image is never held whole
        decoded: list[tuple[int, int, str]] = []

        def write_png(target: str) -> None:
            with open(target, "wb") as f:
                decoded.append(decode_png(data, f, device=args.device, model=args.model,
                                          progress=progress_wanted()))

        _, seconds = timed(write_output, args.output, write_png)
        (width, height, mode), = decoded
    else:
        image, seconds = timed(decode, data, device=args.device, model=args.model, progress=progress_wanted())
        write_output(args.output, lambda target: image.save(target, format=fmt))
        width, height, mode = image.width, image.height, image.mode
    bpp = len(data) * 8 / (width * height)
    print(f"{args.output}: {width}x{height} {mode} (from {len(data)} bytes, {bpp:.4f} bpp, {seconds:.2f} s)",
          file=status_stream(args.output))
    return 0
