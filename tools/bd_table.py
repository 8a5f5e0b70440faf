#!/usr/bin/env python
"""BD-rate of every curve in a results folder against several anchors, as one Markdown table.

    python tools/bd_table.py results/kodak --anchors jpeg,webp,avif

Reads the CompressAI-format JSONs that ``codec eval`` writes (PSNR-RGB) and prints a table
with one column per anchor (Bjøntegaard delta rate, Akima, overlapping PSNR range only).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from codec.evaluation.bd import bd_rate  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--anchors", default="jpeg,webp,avif")
    args = p.parse_args()
    curves = {}
    for path in sorted(Path(args.folder).glob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "results" in data and "name" in data:
            curves[data["name"]] = data["results"]
    anchors = [a for a in args.anchors.split(",") if a]
    missing = [a for a in anchors if a not in curves]
    if missing:
        print(f"no curve named {', '.join(missing)} in {args.folder}", file=sys.stderr)
        return 1
    print("| curve | " + " | ".join(f"BD-rate vs {a}" for a in anchors) + " |")
    print("| --- |" + " ---: |" * len(anchors))
    for name, r in curves.items():
        cells = []
        for a in anchors:
            value, why = bd_rate(curves[a]["bpp"], curves[a]["psnr-rgb"], r["bpp"], r["psnr-rgb"])
            cells.append(f"{value:+.1f} %" if value is not None else f"n/a ({why})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
