"""Kodak BD-rate of a training run's snapshots against training time.

    python tools/snapshot_curve.py runs/walloc --anchor results/kodak/jpeg.json \
        --data /path/to/kodak --out results/kodak/training_walloc

For each model-only snapshot (``RUN/snapshots/stepNNNNNNN.pt``, written by ``codec train``
every ``snapshot_every`` steps) every image of DATA is coded to real files at the given
qualities (:func:`codec.training.selection.code_images`), and the bpp / PSNR-RGB curve
is compared with the anchor curve (a CompressAI-format JSON, e.g. the JPEG curve of
``codec eval``) by Bjøntegaard delta rate. Writes OUT.csv and OUT.png; steps already in
OUT.csv are not measured again, so the tool can be re-run as snapshots appear.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch

from codec.evaluation.bd import bd_rate
from codec.models.weights import build_model
from codec.training.data import list_images
from codec.training.selection import code_images


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="training run folder with snapshots/")
    p.add_argument("--anchor", required=True, help="CompressAI-format JSON of the anchor curve")
    p.add_argument("--data", required=True, help="folder of evaluation images (Kodak)")
    p.add_argument("--qualities", default="1,2.5,4,6")
    p.add_argument("--out", required=True, help="output prefix (OUT.csv, OUT.png)")
    p.add_argument("--every", type=int, default=1, help="measure only snapshots whose step is a multiple of this")
    args = p.parse_args()
    from PIL import Image
    from tqdm import tqdm

    anchor = json.loads(Path(args.anchor).read_text())["results"]
    qualities = [float(q) for q in args.qualities.split(",")]
    images = [np.asarray(Image.open(f).convert("RGB")) for f in list_images(args.data)]
    snapshots = sorted(p for p in (Path(args.run) / "snapshots").glob("step*.pt") if p.stem[4:].isdigit())
    if not snapshots:
        print(f"no snapshots in {args.run}/snapshots", file=sys.stderr)
        return 1
    out = Path(args.out)
    rows = []
    if out.with_suffix(".csv").exists():  # resumable: keep what an earlier call measured
        with open(out.with_suffix(".csv"), newline="") as f:
            rows = [{**r, "step": int(r["step"]), "train_minutes": float(r["train_minutes"]),
                     "bd_rate_vs_anchor": _number(r["bd_rate_vs_anchor"])} for r in csv.DictReader(f)]
    done = {r["step"] for r in rows}
    # The trainer names snapshots step{N:07d}.pt: skip by name before loading any.
    todo = [path for path in snapshots if int(path.stem[4:]) not in done and int(path.stem[4:]) % args.every == 0]
    for path in tqdm(todo, desc="snapshots"):
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = build_model(state["architecture"], state["model_config"])
        model.load_state_dict(state["model"])
        points = code_images(model.eval(), images, qualities)
        bpp, psnr = (list(v) for v in zip(*points.values()))
        rate, why = bd_rate(anchor["bpp"], anchor["psnr-rgb"], bpp, psnr)
        rows.append({"step": state["step"], "train_minutes": round(state["train_seconds"] / 60, 1),
                     "bd_rate_vs_anchor": round(rate, 2) if rate is not None else why,
                     "bpp": ";".join(f"{b:.4f}" for b in bpp), "psnr": ";".join(f"{s:.3f}" for s in psnr)})
        tqdm.write(str(rows[-1]))
    rows.sort(key=lambda r: r["step"])
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    valid = [r for r in rows if not isinstance(r["bd_rate_vs_anchor"], str)]
    ax.plot([r["train_minutes"] for r in valid], [r["bd_rate_vs_anchor"] for r in valid], "o-")
    ax.set_xlabel("training time (minutes, CPU)")
    ax.set_ylabel(f"Kodak BD-rate vs {Path(args.anchor).stem} (%)")
    ax.set_title(f"{Path(args.run).name}: rate saving against training time")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=120)
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    from codec.cli._common import run_tool

    raise SystemExit(run_tool(main, "snapshot_curve"))
