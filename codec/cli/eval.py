"""`codec eval`: rate–distortion evaluation of learned models and classical baselines."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from codec.cli._common import add_device, count_of


def register(subparsers) -> None:
    """Add the ``eval`` subcommand."""
    from codec.evaluation.baselines import BASELINES
    from codec.evaluation.datasets import CACHE_ENV, DATASETS

    parser = subparsers.add_parser(
        "eval", help="rate-distortion evaluation against classical codecs",
        description="Encode every image of DATASET with every codec at every quality, decode it, and "
                    "measure bpp, PSNR-RGB, MS-SSIM and timings. Writes one CompressAI-format JSON per "
                    "curve, results.csv, rd.png and bd_rate.md into --out. Resumable: finished points "
                    "are cached in --cache (default .cache/eval/<dataset name>.jsonl in the current "
                    "folder, never in --out). See docs/evaluation.md.")
    parser.add_argument("dataset", metavar="DATASET",
                        help=f"a folder of images, one image file, or a named dataset: {', '.join(DATASETS)}")
    parser.add_argument("--models", default=None, metavar="LIST",
                        help="comma-separated shipped model names or .safetensors paths (default: every shipped "
                             "model; '' for none)")
    parser.add_argument("--baselines", default=None, metavar="LIST",
                        help=f"comma-separated classical codecs (default: those of {','.join(BASELINES)} whose "
                             f"library is installed; '' for none)")
    parser.add_argument("--qualities", nargs="+", metavar="SPEC",
                        help="quality grid override: 'jpeg=10,20,30 walloc=1,2.5,4', or a plain list for all codecs")
    parser.add_argument("--effort", type=effort_list, default=(0,), metavar="LIST",
                        help="encoder effort levels of the models, comma-separated (default 0); each level is a "
                             "curve of its own, named NAME-effortN above 0 (see docs/effort.md)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output folder (default: results/<dataset name>)")
    parser.add_argument("--anchor", default=None, help="BD-rate anchor curve (default: jpeg)")
    parser.add_argument("--compare", nargs="+", default=[], metavar="FILE.json",
                        help="extra CompressAI-format result JSONs to plot and tabulate")
    parser.add_argument("-j", "--jobs", type=count_of("jobs", "--jobs"), default=1, metavar="N",
                        help="worker processes for the classical baselines (default 1)")
    parser.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                        help=f"download cache for named datasets (default: ${CACHE_ENV} or ~/.cache/codec/datasets)")
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache", type=Path, default=None, metavar="FILE",
                       help="resume cache of finished points (default: .cache/eval/<dataset name>.jsonl "
                            "relative to the current folder)")
    cache.add_argument("--no-cache", action="store_true",
                       help="compute every point; read and write no cache")
    parser.add_argument("--fresh", action="store_true",
                        help="recompute every point, ignoring the cache; the new results replace the old ones in it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_device(parser, bands=False)  # evaluation images are coded whole
    parser.set_defaults(func=run)


def effort_list(text: str) -> tuple[int, ...]:
    """An argparse type for --effort: distinct levels from 0 to MAX_EFFORT, e.g. '0,2,4'."""
    from codec.encoding.effort import MAX_EFFORT, schedule_for
    from codec.errors import InputError

    try:
        levels = tuple(dict.fromkeys(int(part) for part in text.split(",")))
        for level in levels:
            schedule_for(level)
    except (ValueError, InputError):
        raise argparse.ArgumentTypeError(f"must be levels from 0 to {MAX_EFFORT}, comma-separated, got {text!r}") from None
    return levels


def quality_specs(specs: list[str] | None) -> list[str] | None:
    """``--qualities`` as separate ``CODEC=LIST`` specs, whether given as several arguments or
    as one quoted argument (``'jpeg=10,20,30 walloc=1,2.5,4'``, as the help shows)."""
    return [part for spec in specs for part in spec.split()] if specs else specs


def check_folders(dataset: Path, out: Path, cache: Path | None) -> None:
    """Refuse, before any work, an output folder that is a file or lies inside the dataset
    (its plots would be evaluated as images next time), and a cache that is a folder."""
    from codec.errors import InputError

    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file, not a folder")
    if dataset.is_dir() and (out.resolve() == dataset.resolve() or dataset.resolve() in out.resolve().parents):
        raise InputError(f"--out {out}: inside the dataset folder {dataset}; its plots would be read as images")
    cache = cache.expanduser() if cache is not None else None  # as evaluate reads it
    if cache is not None and cache.is_dir():
        raise InputError(f"--cache {cache}: is a folder; name a .jsonl file")
    if cache is not None and cache.is_file() and not _looks_like_cache(cache):
        raise InputError(f"--cache {cache}: not a cache of codec eval (its first line is no JSON point); "
                         "points would be appended to it")


def _looks_like_cache(path: Path) -> bool:
    """Whether a file is empty or starts with a JSON object, as a cache of finished points does."""
    import json

    with open(path, "rb") as f:
        first = f.readline(1 << 20).strip()
    if not first:
        return True
    try:
        return isinstance(json.loads(first), dict)
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    """Run the evaluation; prints the BD-rate table and the skipped items."""
    import time

    from codec.evaluation.pipeline import evaluate, split_names

    out = args.out if args.out is not None else Path("results") / Path(args.dataset).name
    check_folders(Path(args.dataset), out, args.cache)
    qualities = quality_specs(args.qualities)
    start = time.perf_counter()
    result = evaluate(
        args.dataset, out,
        models=None if args.models is None else split_names(args.models),
        baselines=None if args.baselines is None else split_names(args.baselines),
        qualities=qualities, anchor=args.anchor, compare=args.compare, jobs=args.jobs,
        device=args.device, cache_dir=args.cache_dir, progress=False if args.no_progress else None,
        cache=args.cache, use_cache=not args.no_cache, fresh=args.fresh, efforts=args.effort,
    )
    elapsed = time.perf_counter() - start
    outcome = result.outcome
    cache = f"cache {result.cache}" if result.cache is not None else "no cache"
    print(f"{result.dataset}: {outcome.computed} points computed, {outcome.cached} from the cache ({cache}) "
          f"in {elapsed:.1f} s; outputs in {out}")
    per_image = [(c.name, outcome.seconds_per_image(c)) for c in result.codecs]
    measured = [(name, seconds) for name, seconds in per_image if seconds is not None]
    if measured:  # what docs/evaluation.md extrapolates from: one image through each codec's grid
        print("time per image (whole quality grid, coding + metrics): "
              + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in measured)
              + f"; all {sum(s for _, s in measured):.1f} s")
    print(result.table, end="")
    nan_images = sorted({r["image"] for r in outcome.rows if r["ms_ssim"] != r["ms_ssim"]})
    if nan_images:
        print(f"note: MS-SSIM is NaN for {len(nan_images)} image(s) with a side under 161 px: "
              f"{', '.join(nan_images)}")
    if outcome.skipped:
        print(f"skipped {len(outcome.skipped)} item(s) (also in {out / 'summary.json'}):", file=sys.stderr)
        for item, reason in outcome.skipped:
            print(f"  {item}: {reason}", file=sys.stderr)
    return 0
