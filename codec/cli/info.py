"""`codec info FILE`: the header fields of a bitstream file."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="show the header of a .bin file",
                              description="Print a codec file's header fields and rate; checks the CRC.")
    p.add_argument("file", help="bitstream file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codec.bitstream import unpack
    from codec.models.registry import available_models

    data = Path(args.file).read_bytes()
    header, sections = unpack(data)
    shipped = {info.name: info for info in available_models()}
    weights = "model does not ship with this package"
    if header.model in shipped and shipped[header.model].weights_exist:
        from codec.models.weights import file_sha256

        installed = bytes.fromhex(file_sha256(shipped[header.model].weights_path))[:8]
        weights = "matches the installed weights" if installed == header.weights_hash else \
            f"DIFFERS from the installed weights ({installed.hex()})"
    pixels = header.width * header.height
    rows = [
        ("file", f"{args.file} ({len(data)} bytes)"),
        ("format version", str(header.version)),
        ("model", header.model),
        ("weights hash", f"{header.weights_hash.hex()} ({weights})"),
        ("quality", f"{header.quality:g}"),
        ("image size", f"{header.width}x{header.height}{' grayscale' if header.grayscale else ' RGB'}"),
        ("padding", f"right {header.pad_right}, bottom {header.pad_bottom}"),
        ("sections", ", ".join(f"{name} {n} B" for name, n in zip(("z", "y"), header.section_lengths))),
        ("header", f"{len(data) - sum(header.section_lengths)} bytes"),
        ("bpp", f"{len(data) * 8 / pixels:.4f}"),
        ("CRC-32", "ok"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0
