"""`codec models`: the models that ship, with their quality ranges."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list the shipped models",
                              description="List the models this package ships and the qualities they accept.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codec.models.registry import available_models

    print(f"{'model':<12} {'quality':<10} {'default':<8} {'weights':<22} description")
    for info in available_models():
        low, high = info.quality_range
        if info.weights_exist:
            from codec.models.weights import file_sha256

            size = info.weights_path.stat().st_size / 2**20
            weights = f"{size:.1f} MiB {file_sha256(info.weights_path)[:8]}"
        else:
            weights = "missing"
        print(f"{info.name:<12} {f'{low:g}-{high:g}':<10} {info.default_quality:<8g} {weights:<22} {info.description}")
    print("quality: fractional values allowed; higher means more bits and better fidelity")
    return 0
