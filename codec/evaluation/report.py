"""Turn result rows into outputs: CompressAI-format curve JSONs, a CSV, RD plots, a BD-rate table."""
from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codec.errors import InputError
from codec.evaluation import bd
from codec.evaluation.metrics import ms_ssim_db
from codec.fileio import atomic_write, atomic_write_text

CSV_FIELDS = ("codec", "quality", "image", "width", "height", "bytes", "bpp", "psnr", "ms_ssim",
              "encoding_time", "decoding_time", "key")


@dataclass
class Curve:
    """An averaged rate–distortion curve, points sorted by bpp."""

    name: str
    description: str
    bpp: list[float]
    psnr: list[float]
    ms_ssim: list[float] = field(default_factory=list)
    encoding_time: list[float] = field(default_factory=list)
    decoding_time: list[float] = field(default_factory=list)
    qualities: list[str] = field(default_factory=list)
    num_images: list[int] = field(default_factory=list)
    external: bool = False

    def to_json(self, dataset: str) -> dict[str, Any]:
        """CompressAI's results format (non-finite values become null)."""
        def clean(values: Sequence[float]) -> list[float | None]:
            return [float(v) if v is not None and math.isfinite(v) else None for v in values]

        return {
            "name": self.name,
            "description": self.description,
            "dataset": dataset,
            "qualities": self.qualities,
            "num_images": self.num_images,
            "results": {"bpp": clean(self.bpp), "psnr-rgb": clean(self.psnr), "ms-ssim": clean(self.ms_ssim),
                        "encoding_time": clean(self.encoding_time), "decoding_time": clean(self.decoding_time)},
        }


def _mean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def average_curves(rows: list[dict[str, Any]], descriptions: dict[str, str]) -> list[Curve]:
    """Average rows per (codec, quality) over images, one curve per codec (order of ``descriptions``)."""
    curves = []
    for name, description in descriptions.items():
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if row["codec"] == name:
                groups.setdefault(row["quality"], []).append(row)
        points = []
        for quality, group in groups.items():
            points.append((_mean([r["bpp"] for r in group]), _mean([r["psnr"] for r in group]),
                           _mean([r["ms_ssim"] for r in group]), _mean([r["encoding_time"] for r in group]),
                           _mean([r["decoding_time"] for r in group]), quality, len(group)))
        points.sort()
        if points:
            cols = list(zip(*points))
            curves.append(Curve(name, description, list(cols[0]), list(cols[1]), list(cols[2]), list(cols[3]),
                                list(cols[4]), list(cols[5]), list(cols[6])))
    return curves


def load_external(path: Path) -> Curve:
    """A CompressAI-format JSON (results with "bpp" and "psnr-rgb" or "psnr", optional "ms-ssim")."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        results = data["results"]
        bpp = [float(v) for v in results["bpp"]]
        psnr_key = "psnr-rgb" if "psnr-rgb" in results else "psnr"
        psnr = [float(v) for v in results[psnr_key]]
        ms = [float(v) if v is not None else math.nan for v in results.get("ms-ssim", [])]
    except FileNotFoundError:
        raise InputError(f"--compare {path}: no such file") from None
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(f"--compare {path}: not a CompressAI results JSON with bpp and psnr ({err})") from None
    if len(psnr) != len(bpp) or (ms and len(ms) != len(bpp)):
        raise InputError(f"--compare {path}: bpp and metric lists differ in length")
    name = str(data.get("name") or Path(path).stem)
    order = np.argsort(bpp)
    return Curve(name, str(data.get("description", "")), [bpp[i] for i in order], [psnr[i] for i in order],
                 [ms[i] for i in order] if ms else [], external=True)


def write_curve_jsons(curves: list[Curve], out: Path, dataset: str) -> list[Path]:
    """One ``<name>.json`` per (non-external) curve."""
    paths = []
    for curve in curves:
        if curve.external:
            continue
        path = out / f"{curve.name}.json"
        atomic_write_text(path, json.dumps(curve.to_json(dataset), indent=2) + "\n")
        paths.append(path)
    return paths


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """Every (codec, quality, image) point; NaN MS-SSIM written as ``nan``."""
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())


EFFORT_MARKERS = "osD^vP*Xph"


def curve_styles(names: list[str]) -> dict[str, tuple]:
    """(colour, marker) per curve name: one colour per model family (the name without its
    ``-effortN``, tab10's colours in order), paler for its lower effort levels and with
    another marker per level, so a dozen curves stay apart."""
    import re

    from matplotlib import colormaps
    from matplotlib.colors import to_rgb

    levels = {}
    for name in names:
        match = re.fullmatch(r"(.+)-effort(\d+)", name)
        family, level = (match.group(1), int(match.group(2))) if match else (name, 0)
        levels.setdefault(family, {})[name] = level
    palette = [to_rgb(c) for c in colormaps["tab10"].colors] + [to_rgb(c) for c in colormaps["tab20b"].colors]
    styles = {}
    for index, members in enumerate(levels.values()):
        base = palette[index % len(palette)]
        top = max(members.values())
        for name, level in members.items():
            strength = 1.0 if top == 0 else 0.4 + 0.6 * level / top  # 1: the family's colour, less: towards white
            colour = tuple(1 - strength * (1 - c) for c in base)
            styles[name] = (colour, EFFORT_MARKERS[level % len(EFFORT_MARKERS)])
    return styles


def plot(curves: list[Curve], path: Path, metric: str = "psnr", title: str = "") -> None:
    """PSNR (or MS-SSIM in dB) against bpp, every curve labelled, with legend and grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6), dpi=110)
    styles = curve_styles([curve.name for curve in curves])
    for curve in curves:
        ys = curve.psnr if metric == "psnr" else [ms_ssim_db(v) for v in curve.ms_ssim]
        pts = [(x, y) for x, y in zip(curve.bpp, ys) if y is not None and math.isfinite(y)]
        if not pts:
            continue
        xs, ys = zip(*pts)
        color, marker = styles[curve.name]
        ax.plot(xs, ys, "--" if curve.external else "-", color=color, marker=marker, markersize=3.5,
                label=curve.name)
    ax.set_xlabel("bits per pixel (file size incl. header)")
    ax.set_ylabel("PSNR-RGB (dB)" if metric == "psnr" else "MS-SSIM (dB, -10 log10(1 - MS-SSIM))")
    ax.set_title(title)
    ax.grid(True, alpha=0.4)
    if ax.get_legend_handles_labels()[0]:  # no curve has a finite point (MS-SSIM of small images): no legend
        ax.legend(loc="lower right")
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def _fmt_bd(value: float | None, reason: str) -> str:
    return f"{value:+.2f} %" if value is not None else f"n/a ({reason})"


def bd_table(curves: list[Curve], anchor: str) -> str:
    """Markdown table of BD-rate (PSNR and MS-SSIM dB) of every curve against ``anchor``."""
    by_name = {c.name: c for c in curves}
    ref = by_name[anchor]
    lines = [
        f"BD-rate against **{anchor}** (negative = fewer bits for the same quality). Bjøntegaard delta with "
        f"Akima interpolation of log10(bpp) over the metric (`bjontegaard` package), integrated only over "
        f"the overlapping quality range of the two curves.",
        "",
        "| curve | BD-rate (PSNR-RGB) | PSNR overlap (dB) | BD-rate (MS-SSIM dB) | bpp range |",
        "|---|---:|---|---:|---|",
    ]
    for curve in curves:
        value, reason = bd.bd_rate(ref.bpp, ref.psnr, curve.bpp, curve.psnr)
        span = bd.overlap(ref.psnr, curve.psnr)
        span_text = f"{span[0]:.2f}–{span[1]:.2f}" if span else "none"
        if curve.ms_ssim and ref.ms_ssim:
            ms_value, ms_reason = bd.bd_rate(ref.bpp, [ms_ssim_db(v) for v in ref.ms_ssim],
                                             curve.bpp, [ms_ssim_db(v) for v in curve.ms_ssim])
        else:
            ms_value, ms_reason = None, "no MS-SSIM values"
        rates = [b for b in curve.bpp if math.isfinite(b)]
        bpp_text = f"{min(rates):.3f}–{max(rates):.3f}" if rates else "-"
        name = f"{curve.name} (external)" if curve.external else curve.name
        lines.append(f"| {name} | {_fmt_bd(value, reason)} | {span_text} | {_fmt_bd(ms_value, ms_reason)} "
                     f"| {bpp_text} |")
    return "\n".join(lines) + "\n"


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """``summary.json``: dataset, images, codecs, skipped items, work counts."""
    atomic_write_text(path, json.dumps(summary, indent=2) + "\n")
