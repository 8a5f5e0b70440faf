"""The whole ``codec eval`` run: choose codecs and qualities, run the grid, write every output."""
from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from codec.errors import InputError
from codec.evaluation import learned, report
from codec.evaluation.baselines import available_baselines, get_baseline
from codec.evaluation.datasets import resolve_dataset
from codec.evaluation.runner import CodecSpec, RunOutcome, run_grid, scan_images
from codec.evaluation.store import ResultStore, default_cache_path, format_quality

#: Where the resume cache used to be written (inside the results folder); no longer read.
LEGACY_CACHE_FILE = "cache.jsonl"


def split_names(text: str | None) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``; ``""`` -> ``[]``."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def parse_qualities(tokens: Sequence[str] | None) -> tuple[dict[str, list[float]], list[float] | None]:
    """``["jpeg=10,20", "1,2"]`` -> ({"jpeg": [10, 20]}, [1, 2]) (per-codec lists, list for the rest)."""
    per_codec: dict[str, list[float]] = {}
    common: list[float] | None = None

    def numbers(text: str, what: str) -> list[float]:
        try:
            values = [float(v) for v in split_names(text)]
        except ValueError:
            raise InputError(f"--qualities {what}: expected comma-separated numbers, got {text!r}") from None
        if not values:
            raise InputError(f"--qualities {what}: empty list")
        return values

    for token in tokens or []:
        if "=" in token:
            name, _, values = token.partition("=")
            per_codec[name.strip()] = numbers(values, name.strip())
        else:
            common = numbers(token, "list")
    return per_codec, common


def build_codecs(model_refs: list[str], baseline_names: list[str], qualities: Sequence[str] | None,
                 device: str = "cpu", efforts: Sequence[int] = (0,)) -> list[CodecSpec]:
    """Validate codec names and qualities before any work starts."""
    per_codec, common = parse_qualities(qualities)
    specs: list[CodecSpec] = []
    for name in baseline_names:
        b = get_baseline(name)
        b.require()  # a missing plugin is a one-line error before any work
        chosen = per_codec.pop(name, None) or common or list(b.default_qualities)
        for q in chosen:
            b.check_quality(q)
        specs.append(CodecSpec(b.name, b.description, b.settings, tuple(sorted(set(chosen)))))
    if model_refs:
        learned.require_coder()
    given = {ref: per_codec.pop(ref, None) for ref in model_refs}
    for ref in model_refs:
        for effort in efforts:
            m = learned.model_spec(ref, device, effort)
            chosen = given[ref] or per_codec.pop(m.name, None) or common or list(m.default_qualities)
            low, high = m.quality_range
            for q in chosen:
                if not low <= q <= high:
                    raise InputError(f"{m.name}: quality {q:g} outside {low:g}..{high:g}")
            specs.append(CodecSpec(m.name, m.description, m.settings, tuple(sorted(set(chosen))), model=m))
    if per_codec:
        raise InputError(f"--qualities names codecs that are not evaluated: {', '.join(per_codec)}")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InputError(f"two codecs share a curve name: {names}")
    return specs


@dataclass
class EvalResult:
    """What ``evaluate`` did: the run outcome, the curves and the BD-rate table (markdown)."""

    dataset: str
    outcome: RunOutcome
    curves: list[report.Curve]
    table: str
    outputs: list[Path]
    cache: Path | None = None
    codecs: list[CodecSpec] = field(default_factory=list)


def evaluate(dataset: str, out: Path, models: list[str] | None = None, baselines: list[str] | None = None,
             qualities: Sequence[str] | None = None, anchor: str | None = None, compare: Sequence[str] = (),
             jobs: int = 1, device: str = "cpu", cache_dir: Path | None = None, progress: bool | None = None,
             warn: Callable[[str], None] | None = None, cache: Path | None = None, use_cache: bool = True,
             fresh: bool = False, efforts: Sequence[int] = (0,)) -> EvalResult:
    """Run the evaluation and write JSONs, CSV, plots, ``bd_rate.md`` and ``summary.json`` into ``out``.

    ``cache``: the resume cache file (default :func:`~codec.evaluation.store.default_cache_path`
    of the dataset name, ``.cache/eval/<name>.jsonl`` under the current directory; never in
    ``out``). ``use_cache=False``: no cache is read or written. ``fresh=True``: every point is
    recomputed; the new results are still written to the cache. ``efforts``: the encoder
    effort levels each model is evaluated at, one curve each (``NAME``, ``NAME-effortN``).
    """
    warn = warn or (lambda message: print(message, file=sys.stderr))
    if jobs < 1:
        raise InputError("--jobs must be at least 1")
    if models is None:
        models = learned.default_models()
        if models and not learned.coder_available():
            warn(f"codec eval: warning: skipping models {', '.join(models)}: compiled range coder not available")
            models = []
    if baselines is None:
        baselines, missing = available_baselines()
        for name, reason in missing:
            warn(f"codec eval: note: {name} skipped ({reason})")
    codecs = build_codecs(models, baselines, qualities, device, efforts)
    external = [report.load_external(Path(p)) for p in compare]
    if not codecs and not external:
        raise InputError("nothing to evaluate: --models and --baselines are both empty")
    curve_names = [c.name for c in codecs] + [e.name for e in external]
    clashes = sorted({n for n in curve_names if curve_names.count(n) > 1})
    if clashes:
        raise InputError(f"--compare: curve name {clashes[0]!r} is taken by another curve; rename it in its JSON")
    if anchor is not None and anchor not in curve_names:
        raise InputError(f"--anchor {anchor!r} is not one of the curves: {', '.join(curve_names)}")
    name, paths = resolve_dataset(dataset, cache_dir)
    root = Path(dataset) if Path(dataset).is_dir() else (paths[0].parent if paths else None)
    images, skipped = scan_images(paths, root)
    for image_name, reason in skipped:
        warn(f"codec eval: warning: skipped {image_name}: {reason}")
    if not images and codecs:
        raise InputError(f"no readable images in {dataset} ({len(skipped)} skipped)")
    out = Path(out)
    if use_cache:
        cache = Path(cache).expanduser() if cache is not None else default_cache_path(name)
    else:
        cache = None
    legacy = out / LEGACY_CACHE_FILE
    if legacy.is_file() and (cache is None or not _same_file(legacy, cache)):
        warn(f"codec eval: note: {legacy} is not read (the cache is "
             f"{cache if cache is not None else 'off'}); it can be deleted")
    out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(cache, fresh=fresh)
    outcome = run_grid(codecs, images, store, jobs, device, progress, warn)
    outcome.skipped[:0] = skipped
    curves = report.average_curves(outcome.rows, {c.name: c.description for c in codecs}) + external
    outputs = report.write_curve_jsons(curves, out, name)
    report.write_csv(outcome.rows, out / "results.csv")
    report.plot(curves, out / "rd.png", "psnr", f"{name}: PSNR-RGB vs rate ({len(images)} images)")
    report.plot(curves, out / "rd_msssim.png", "ms-ssim", f"{name}: MS-SSIM vs rate ({len(images)} images)")
    table = _table(curves, anchor, warn)
    (out / "bd_rate.md").write_text(f"# {name}\n\n{table}", encoding="utf-8")
    small = sorted({r["image"] for r in outcome.rows if r["ms_ssim"] != r["ms_ssim"]})
    report.write_summary(out / "summary.json", {
        "dataset": name, "source": str(dataset), "images": [im.name for im in images],
        "codecs": {c.name: {"description": c.description, "qualities": [format_quality(q) for q in c.qualities]}
                   for c in codecs},
        "compare": [str(p) for p in compare], "anchor": anchor or _default_anchor(curves),
        "skipped": [{"item": item, "reason": reason} for item, reason in outcome.skipped],
        "ms_ssim_nan_images": small, "computed_points": outcome.computed, "cached_points": outcome.cached,
    })
    outputs += [out / n for n in ("results.csv", "rd.png", "rd_msssim.png", "bd_rate.md", "summary.json")]
    return EvalResult(name, outcome, curves, table, outputs, cache, codecs)


def _same_file(a: Path, b: Path) -> bool:
    return a.exists() and b.exists() and a.samefile(b)


def _default_anchor(curves: list[report.Curve]) -> str | None:
    """The BD-rate anchor when none is given: JPEG if evaluated, else the first curve."""
    names = [c.name for c in curves]
    return "jpeg" if "jpeg" in names else (names[0] if names else None)


def _table(curves: list[report.Curve], anchor: str | None, warn: Callable[[str], None]) -> str:
    names = [c.name for c in curves]
    if not curves:
        return "n/a: no curves\n"
    if anchor is None:
        anchor = _default_anchor(curves)
    elif anchor not in names:
        raise InputError(f"--anchor {anchor!r} is not one of the curves: {', '.join(names)}")
    return report.bd_table(curves, anchor)
