"""`codec info FILE`: the header fields and sections of a bitstream file."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="show the header of .bin files",
                              description="Print each codec file's header fields and rate; checks the CRC. "
                                          "A file that cannot be read is reported on stderr and the others "
                                          "are still shown (exit status 1).")
    p.add_argument("files", nargs="+", metavar="FILE", help="bitstream files (or - for standard input)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per file and line (sizes in bytes), for scripts")
    p.set_defaults(func=run)


def printable(text: str) -> str:
    """``text`` with every non-printable character escaped (a header is untrusted input)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def describe_section(section) -> str:
    """One line about a section: its latent's shape, its substreams and its size."""
    shape = "x".join(map(str, section.shape)) if section.shape else "shape not recorded (version 1)"
    count = len(section.substreams)
    return f"{shape}, {count} substream{'s' if count != 1 else ''}, {len(section.payload)} bytes"


def file_info(path: str) -> dict:
    """What ``codec info`` says of one file, as plain values; CodecError if it is not a valid codec file."""
    from codec import zoo
    from codec.bitstream import unpack
    from codec.cli._common import read_bitstream

    data = read_bitstream(path)
    header, sections = unpack(data)  # checks the CRC
    entry = zoo.find_version(header.model, header.weights_hash)
    if entry is not None:
        weights = f"shipped: {entry.path.name}"
    elif header.model in {e.name for e in zoo.shipped_models()}:
        weights = "other weights than the shipped ones: pass them with --model to decode"
    else:
        weights = "model does not ship with this package"
    return {
        "file": path, "bytes": len(data), "format_version": header.version, "model": header.model,
        "weights_hash": header.weights_hash.hex(), "weights": weights, "quality": header.quality,
        "width": header.width, "height": header.height, "grayscale": header.grayscale,
        "pad_right": header.pad_right, "pad_bottom": header.pad_bottom, "coder": header.coder_name,
        "coder_id": header.coder, "integer_parameters": header.integer_parameters,
        "sections": [{"name": s.name, "shape": list(s.shape) if s.shape else None,
                      "substreams": len(s.substreams), "bytes": len(s.payload), "text": describe_section(s)}
                     for s in sections],
        "header_bytes": len(data) - sum(header.section_lengths),
        "bpp": len(data) * 8 / (header.width * header.height), "crc32": "ok",
    }


def print_info(info: dict) -> None:
    """The aligned text form of :func:`file_info`."""
    rows = [
        ("file", f"{printable(info['file'])} ({info['bytes']} bytes)"),
        ("format version", str(info["format_version"])),
        ("model", printable(info["model"])),
        ("weights hash", f"{info['weights_hash']} ({info['weights']})"),
        ("quality", f"{info['quality']:g}"),
        ("image size", f"{info['width']}x{info['height']}{' grayscale' if info['grayscale'] else ' RGB'}"),
        ("padding", f"right {info['pad_right']}, bottom {info['pad_bottom']}"),
        ("coder", f"{printable(info['coder'])} (id {info['coder_id']})"),
        ("entropy parameters", "integer (exact)" if info["integer_parameters"] else "float"),
        *((f"section {printable(s['name'])}", s["text"]) for s in info["sections"]),
        ("header", f"{info['header_bytes']} bytes"),
        ("bpp", f"{info['bpp']:.4f}"),
        ("CRC-32", info["crc32"]),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from codec.errors import CodecError

    failed = 0
    for number, path in enumerate(args.files):
        try:
            info = file_info(path)
        except (CodecError, OSError) as err:
            if len(args.files) == 1:
                raise
            text = str(err) if str(err).startswith(path) else f"{path}: {err}"
            print(f"codec info: error: {printable(text)}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            for section in info["sections"]:
                del section["text"]
            print(json.dumps(info))
        else:
            if number:
                print()
            print_info(info)
    return 1 if failed else 0
