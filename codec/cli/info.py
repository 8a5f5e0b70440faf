"""`codec info FILE`: the header fields and sections of a bitstream file."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="show the header of a .bin file",
                              description="Print a codec file's header fields and rate; checks the CRC.")
    p.add_argument("file", help="bitstream file")
    p.set_defaults(func=run)


def printable(text: str) -> str:
    """``text`` with every non-printable character escaped (a header is untrusted input)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def describe_section(section) -> str:
    """One line about a section: its latent's shape, its substreams and its size."""
    shape = "x".join(map(str, section.shape)) if section.shape else "shape not recorded (version 1)"
    count = len(section.substreams)
    return f"{shape}, {count} substream{'s' if count != 1 else ''}, {len(section.payload)} B"


def run(args: argparse.Namespace) -> int:
    from codec import zoo
    from codec.bitstream import unpack
    from codec.cli._common import read_bitstream

    data = read_bitstream(args.file)
    header, sections = unpack(data)
    entry = zoo.find_version(header.model, header.weights_hash)
    if entry is not None:
        weights = f"shipped: {entry.path.name}"
    elif header.model in {e.name for e in zoo.shipped_models()}:
        weights = "other weights than the shipped ones: pass them with --model to decode"
    else:
        weights = "model does not ship with this package"
    pixels = header.width * header.height
    rows = [
        ("file", f"{printable(args.file)} ({len(data)} bytes)"),
        ("format version", str(header.version)),
        ("model", printable(header.model)),
        ("weights hash", f"{header.weights_hash.hex()} ({weights})"),
        ("quality", f"{header.quality:g}"),
        ("image size", f"{header.width}x{header.height}{' grayscale' if header.grayscale else ' RGB'}"),
        ("padding", f"right {header.pad_right}, bottom {header.pad_bottom}"),
        ("coder", f"{printable(header.coder_name)} (id {header.coder})"),
        ("entropy parameters", "integer (exact)" if header.integer_parameters else "float"),
        *((f"section {printable(s.name)}", describe_section(s)) for s in sections),
        ("header", f"{len(data) - sum(header.section_lengths)} bytes"),
        ("bpp", f"{len(data) * 8 / pixels:.4f}"),
        ("CRC-32", "ok"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0
