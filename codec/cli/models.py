"""`codec models`: the shipped models, their quality ranges and measured results."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list the shipped models",
                              description="List the models this package ships, the qualities they accept "
                                          "and their measured Kodak BD-rates.")
    p.add_argument("--all", action="store_true",
                   help="also list the older weights kept so that their files decode (select one with "
                        "--model NAME@HASH)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codec.zoo import DEFAULT_MODEL, all_versions, shipped_models

    entries = all_versions() if args.all else shipped_models()
    if not entries:
        print("no model weights are installed")
        return 1
    width = max(12, *(len(entry.path.stem) + 1 for entry in entries))
    print(f"{'model':<{width}} {'quality':<8} {'default':<8} {'weights':<18} {'Kodak BD-rate vs JPEG / WebP':<29} description")
    for entry in entries:
        low, high = entry.quality_range
        size = entry.path.stat().st_size / 2**20
        weights = f"{size:.1f} MiB {entry.sha256[:8]}"
        measured = entry.measured
        if measured and measured.get("dataset") == "kodak":
            rates = measured["bd_rate_percent"]
            figures = " / ".join(f"{rates[a]:+.1f} %" if a in rates else "n/a" for a in ("jpeg", "webp"))
        else:
            figures = "not measured"
        print(f"{entry.path.stem:<{width}} {f'{low:g}-{high:g}':<8} {entry.default_quality:<8g} {weights:<18} "
              f"{figures:<29} {entry.description}")
    print(f"default: {DEFAULT_MODEL} (the fastest); choose another with --model NAME")
    print("quality: fractional values allowed; higher means more bits and better fidelity")
    print("BD-rate: Kodak, PSNR-RGB, real files; negative means fewer bits than the anchor (docs/evaluation.md)")
    return 0
