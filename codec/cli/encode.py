"""`codec encode IN OUT`: compress an image into a bitstream file;
`codec encode IN... -o OUTDIR`: compress many (see :mod:`codec.cli.batch`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from codec.cli._common import (add_device, check_input, check_output, progress_wanted, report_conversions,
                               status_stream, timed, write_output)
from codec.encoding.effort import MAX_EFFORT, schedule_for
from codec.errors import InputError
from codec.zoo import DEFAULT_MODEL


def register(subparsers) -> None:
    from codec.cli.batch import add_batch_options

    p = subparsers.add_parser(
        "encode", help="compress an image into a .bin file (or many, with -o OUTDIR)",
        usage="%(prog)s [options] INPUT OUTPUT\n       %(prog)s [options] INPUT... -o OUTDIR [--jobs N]",
        description="Compress an image (any format Pillow reads) into a codec file. "
                    "'-' reads standard input / writes standard output. With -o OUTDIR, every INPUT "
                    "(files and folders of images) is compressed into OUTDIR/<stem>.bin; each file's line, "
                    "then a total (files, bytes, mean bpp, files/s), go to standard output, a progress bar "
                    "to standard error; files that fail are listed at the end and the exit status is 1.")
    p.add_argument("paths", nargs="+", metavar="INPUT",
                   help="without -o: INPUT OUTPUT, the image to compress (or - for standard input) and the "
                        "bitstream file to write (written atomically; not an image extension; or -). "
                        "With -o: images, or folders of images")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL,
                   help="shipped model name (`codec models`), NAME@HASH for kept older weights, or a .safetensors "
                        f"weights file (default {DEFAULT_MODEL})")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("-q", "--quality", type=float, default=None,
                      help="rate/quality trade-off, 1 (fewest bits) to 6 for the shipped models, fractional allowed "
                           "(default: the model's, 3 for the shipped ones)")
    rate.add_argument("--bpp", type=target_value("bpp"), default=None, metavar="B",
                      help="largest quality whose file is at most B bits per pixel")
    rate.add_argument("--size", type=target_value("size"), default=None, metavar="BYTES",
                      help="largest quality whose file is at most BYTES (e.g. 20000, 50k, 1.5M; k and M are "
                           "1024 and 1024^2 bytes, also written KiB, MiB)")
    rate.add_argument("--psnr", type=target_value("psnr"), default=None, metavar="DB",
                      help="smallest quality whose decoded PSNR-RGB is at least DB")
    p.add_argument("--best-effort", action="store_true",
                   help="with --bpp/--size/--psnr: if the target is out of reach, write the nearest file with a warning "
                        "(default: a one-line error naming the reachable range)")
    p.add_argument("-e", "--effort", type=effort_level, default=0, metavar="N",
                   help=f"0 (default): one pass of the encoder; 1 to {MAX_EFFORT}: refine the latents for this image, "
                        "a smaller file for the same quality at more encoding time (see docs/effort.md)")
    add_device(p)
    add_batch_options(p, "encode")
    p.set_defaults(func=run)


def target_value(kind: str):
    """An argparse type that checks a --bpp/--size/--psnr value (exit status 2 if invalid)."""
    from codec.encoding.rate_control import make_target

    def parse(text: str):
        try:
            target = make_target(kind, text)
        except InputError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return target.value

    return parse


def effort_level(text: str) -> int:
    """An argparse type for --effort: an integer from 0 to MAX_EFFORT."""
    try:
        level = int(text)
        schedule_for(level)
    except (ValueError, InputError):
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_EFFORT}, got {text!r}") from None
    return level


def rate_target(args: argparse.Namespace):
    """The rate-control target the options ask for, or None (then --quality applies)."""
    from codec.encoding.rate_control import make_target

    for kind in ("bpp", "size", "psnr"):
        if getattr(args, kind) is not None:
            return make_target(kind, getattr(args, kind), args.best_effort)
    if args.best_effort:
        raise InputError("--best-effort goes with --bpp, --size or --psnr")
    return None


def run(args: argparse.Namespace) -> int:
    from codec.cli.batch import dispatch

    target = rate_target(args)
    if target is not None:
        args.quality = target

    from codec.band_pool import threads_for_bands
    from codec.tiling import tiles_of

    with threads_for_bands(args.threads), tiles_of(args.tile):
        return dispatch("encode", args, encode_one, "images")


def encode_one(args: argparse.Namespace) -> int:
    from codec.api import encode
    from codec.bitstream import unpack
    from codec.encoding.rate_control import Target, encode_to_target
    from codec.image_io import read_image_stream

    check_input(args.input)
    check_output(args.output, [args.input], "bitstream")
    source = read_image_stream(sys.stdin.buffer) if args.input == "-" else args.input
    reached = ""
    with report_conversions("encode"):
        if isinstance(args.quality, Target):  # the search measured what it met: say so for PSNR
            (data, attempt), seconds = timed(encode_to_target, source, args.model, args.quality, args.device,
                                             effort=args.effort, progress=progress_wanted())
            reached = f", PSNR-RGB {attempt.value:.2f} dB" if args.quality.kind == "psnr" else ""
        else:
            data, seconds = timed(encode, source, model=args.model, quality=args.quality, device=args.device,
                                  effort=args.effort, progress=progress_wanted())
    write_output(args.output, lambda target: Path(target).write_bytes(data))
    header, _ = unpack(data)
    bpp = len(data) * 8 / (header.width * header.height)
    print(f"{args.output}: {len(data)} bytes, {bpp:.4f} bpp{reached} ({header.width}x{header.height}, "
          f"model {header.model}, quality {header.quality:g}, {seconds:.2f} s)", file=status_stream(args.output))
    return 0
