"""BD-rate of every curve in a results folder against several anchors, as one Markdown table.

    python tools/bd_table.py results/kodak --anchors jpeg,webp,avif
    python tools/bd_table.py results/kodak --anchors jpeg,webp --zoo   # also record them for `codec models`
    python tools/bd_table.py results/kodak-effort --anchors jpeg,webp,walloc --times   # + median seconds

Reads the CompressAI-format JSONs that ``codec eval`` writes (PSNR-RGB) and prints a table
with one column per anchor (Bjøntegaard delta rate, Akima, overlapping PSNR range only).
With ``--zoo`` the BD-rates of learned curves are written to ``codec/zoo/measured.json``,
keyed by the weights' SHA-256 prefix that ``codec eval`` puts in the curve description, so
that ``codec models`` shows each shipped model's measured figures (effort-0 curves only: the
zoo reports what a plain encode gives). ``--times`` adds the median encode and decode
seconds of one image at one quality, from the folder's ``results.csv``.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import re
import sys
from pathlib import Path

from codec.evaluation.bd import bd_rate
from codec.fileio import atomic_write_text
from codec.zoo import MEASURED_FILE


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--anchors", default="jpeg,webp,avif")
    p.add_argument("--zoo", action="store_true", help=f"record learned models' BD-rates in {MEASURED_FILE}")
    p.add_argument("--times", action="store_true", help="add median encode/decode seconds per image and quality")
    args = p.parse_args()
    if not Path(args.folder).is_dir():
        print(f"bd_table: {args.folder}: no such folder", file=sys.stderr)
        return 1
    if args.zoo and not _whole_kodak(Path(args.folder)):
        print(f"bd_table: --zoo records Kodak figures: {args.folder} is not a codec eval of all 24 Kodak images "
              "(its summary.json)", file=sys.stderr)
        return 1
    curves, weights = {}, {}
    for path in sorted(Path(args.folder).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (ValueError, OSError) as err:
            print(f"bd_table: {path}: not a readable JSON file ({err})", file=sys.stderr)
            return 1
        if isinstance(data, dict) and "results" in data and "name" in data:
            curves[data["name"]] = data["results"]
            found = re.search(r"weights sha256 ([0-9a-f]{12})", data.get("description", ""))
            if found and "encoder effort" not in data.get("description", ""):
                weights[data["name"]] = (found.group(1), data.get("dataset", Path(args.folder).name))
    anchors = [a for a in args.anchors.split(",") if a]
    if not anchors:
        print("bd_table: --anchors names no curve", file=sys.stderr)
        return 1
    missing = [a for a in anchors if a not in curves]
    if missing:
        print(f"no curve named {', '.join(missing)} in {args.folder}", file=sys.stderr)
        return 1
    results = Path(args.folder) / "results.csv"
    if args.times and not results.is_file():
        print(f"--times needs {results} (written by codec eval)", file=sys.stderr)
        return 1
    times = _median_times(results) if args.times else {}
    extra = ["encode s (median)", "decode s (median)"] if args.times else []
    print("| curve | " + " | ".join([f"BD-rate vs {a}" for a in anchors] + extra) + " |")
    print("| --- |" + " ---: |" * (len(anchors) + len(extra)))
    measured = json.loads(MEASURED_FILE.read_text()) if MEASURED_FILE.exists() else {}
    for name, r in curves.items():
        cells, values = [], {}
        for a in anchors:
            value, why = bd_rate(curves[a]["bpp"], curves[a]["psnr-rgb"], r["bpp"], r["psnr-rgb"])
            cells.append(f"{value:+.1f} %" if value is not None else f"n/a ({why})")
            if value is not None and a != name:
                values[a] = round(value, 1)
        if args.times:
            cells += [f"{t:.3g}" if t is not None else "n/a" for t in times.get(name, (None, None))]
        print(f"| {name} | " + " | ".join(cells) + " |")
        if args.zoo and name in weights:
            sha, dataset = weights[name]
            kept = measured.get(sha, {}).get("bd_rate_percent", {})  # anchors not given this time stay
            measured[sha] = {"dataset": dataset, "metric": "PSNR-RGB", "bd_rate_percent": {**kept, **values},
                             "source": args.folder}
    if args.zoo:
        atomic_write_text(MEASURED_FILE, json.dumps(measured, indent=1, sort_keys=True) + "\n")
        print(f"wrote {MEASURED_FILE}")
    return 0


def _whole_kodak(folder: Path) -> bool:
    """Whether ``folder`` holds a ``codec eval`` of the 24 Kodak images (its summary.json)."""
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except (ValueError, OSError):
        return False
    return summary.get("dataset") == "kodak" and len(summary.get("images", [])) == 24


def _median_times(path: Path) -> dict[str, tuple[float, float]]:
    """Median (encode, decode) seconds of one point, per codec, from a results.csv."""
    points: dict[str, list[tuple[float, float]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            points.setdefault(row["codec"], []).append((float(row["encoding_time"]), float(row["decoding_time"])))
    return {name: (statistics.median(e for e, _ in rows), statistics.median(d for _, d in rows))
            for name, rows in points.items()}


if __name__ == "__main__":
    sys.exit(main())
