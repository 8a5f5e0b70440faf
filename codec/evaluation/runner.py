"""Run the evaluation grid: every (codec, quality, image) point, resumable through a result cache.

Classical baselines can run in worker processes (``jobs > 1``); learned models always run in
the main process. Every finished point is appended to the cache at once, so an interrupted
run resumes where it stopped and a repeated run does no coding at all.

The progress bar counts points but its ETA is not tqdm's points × average rate: points differ
in cost by an order of magnitude (a JPEG point vs a learned-model point), so see
:class:`EtaEstimate` for how the remaining time is estimated.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codec.errors import CodecError, InputError
from codec.evaluation import learned, metrics
from codec.evaluation.baselines import get_baseline
from codec.fileio import file_sha256
from codec.evaluation.store import ResultStore, format_quality, point_key


@dataclass(frozen=True)
class CodecSpec:
    """One curve to compute: a baseline (``model is None``) or a learned model, and its qualities."""

    name: str
    description: str
    settings: str
    qualities: tuple[float, ...]
    model: learned.ModelSpec | None = None

    @property
    def kind(self) -> str:
        return "baseline" if self.model is None else "model"


@dataclass(frozen=True)
class ImageItem:
    """An image of the dataset: path, display name, content hash and size."""

    path: Path
    name: str
    sha256: str
    width: int
    height: int


@dataclass
class RunOutcome:
    """What a run produced: result rows (one per point), skipped items, and work counts."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    computed: int = 0
    cached: int = 0
    #: codec -> [wall seconds, points] of the points computed in this run (coding and metrics)
    timings: dict[str, list[float]] = field(default_factory=dict)

    def seconds_per_image(self, codec: CodecSpec) -> float | None:
        """Mean wall seconds of one image through ``codec``'s whole grid, or None if none was computed."""
        seconds, points = self.timings.get(codec.name, (0.0, 0))
        return seconds / points * len(codec.qualities) if points else None


def load_rgb(path: Path) -> np.ndarray:
    """8-bit RGB array of an image file (conversion warnings silenced); InputError if unreadable."""
    from codec.image_io import load_image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_image(path).rgb


def scan_images(paths: Iterable[Path], root: Path | None = None) -> tuple[list[ImageItem], list[tuple[str, str]]]:
    """Check that every image decodes; return the usable ones and (name, reason) of the others."""
    items: list[ImageItem] = []
    skipped: list[tuple[str, str]] = []
    for path in paths:
        name = str(path.relative_to(root)) if root and path.is_relative_to(root) else path.name
        try:
            rgb = load_rgb(path)
        except (CodecError, OSError) as err:
            skipped.append((name, f"unreadable image: {err}"))
            continue
        items.append(ImageItem(path, name, file_sha256(path), rgb.shape[1], rgb.shape[0]))
    return items, skipped


def measure(original: np.ndarray, data: bytes, reconstruction: np.ndarray, encode_s: float,
            decode_s: float) -> dict[str, Any]:
    """The metrics of one coded image."""
    if reconstruction.shape != original.shape:
        raise CodecError(f"decoded image has shape {reconstruction.shape}, expected {original.shape}")
    h, w = original.shape[:2]
    return {
        "bytes": len(data), "bpp": metrics.bpp(len(data), w, h),
        "psnr": metrics.psnr(original, reconstruction), "ms_ssim": metrics.ms_ssim(original, reconstruction),
        "encoding_time": encode_s, "decoding_time": decode_s,
    }


def code_baseline(name: str, quality: float, path: str) -> dict[str, Any]:
    """Encode + decode one image with a baseline and measure it (runs in worker processes)."""
    baseline = get_baseline(name)
    rgb = load_rgb(Path(path))
    start = time.perf_counter()
    data = baseline.encode(rgb, quality)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    reconstruction = baseline.decode(data)
    decode_s = time.perf_counter() - start
    return measure(rgb, data, reconstruction, encode_s, decode_s)


def code_baseline_timed(name: str, quality: float, path: str) -> tuple[dict[str, Any], float]:
    """:func:`code_baseline` and its wall seconds (load + encode + decode + metrics), for the ETA."""
    start = time.perf_counter()
    result = code_baseline(name, quality, path)
    return result, time.perf_counter() - start


#: Wall seconds per megapixel of one point (read the image, encode, decode, PSNR and MS-SSIM),
#: measured with OMP_NUM_THREADS=1 on the development machine (2-core x86 VM, 2 Kodak images,
#: see docs/evaluation.md). They only seed the ETA until a codec's first point is measured, and
#: only their ratios matter (see EtaEstimate).
COST_PRIOR_S_PER_MPX: dict[str, float] = {
    "jpeg": 0.55, "jpeg444": 0.55, "webp": 0.95, "jpeg2000": 0.85, "avif": 2.2, "jxl": 1.25,
    "walloc": 2.2, "hyperprior": 2.3,
}
#: The same for a baseline or a learned model without an entry above.
DEFAULT_BASELINE_PRIOR_S_PER_MPX = 1.0
DEFAULT_MODEL_PRIOR_S_PER_MPX = 2.3


class EtaEstimate:
    """Remaining wall time of a grid whose points differ widely in cost.

    Why not tqdm's own ETA: it divides the points left by the average rate so far, which is only
    right when the points done so far are representative of those left. Here they are not: with
    one thread a JPEG point costs a quarter of a learned-model point or of an AVIF point (the
    ratios change with threads and devices), and the grid used to run codec by codec, fast
    baselines first, so the bar promised seconds for a run that still had minutes of model
    points ahead (issue 9: "11 s" with 75 s to go). Instead:

    * the cost of a point is (image megapixels) x (seconds per megapixel of its codec);
    * a codec's seconds per megapixel is measured in this run as soon as one of its points is
      done; before that it is the prior from COST_PRIOR_S_PER_MPX scaled by how much faster or
      slower than the development machine this machine has been on the points done so far;
    * cached points are not in the work at all;
    * the ETA is the sum over the points left, with the baseline part divided by the number of
      worker processes (``jobs``), since they run that many at a time.

    The runner also orders the work image by image (every codec on the first image, then every
    codec on the second...), so each codec is measured on the first image and the estimate is
    based on measurements, not priors, after the first image (with ``jobs > 1``, after the first
    image of the model stage for the models).
    """

    def __init__(self, work: Iterable[tuple[CodecSpec, float, ImageItem]], jobs: int = 1) -> None:
        self.jobs = max(1, jobs)
        self.remaining_mpx: dict[str, float] = {}
        self.parallel: dict[str, int] = {}
        self.prior: dict[str, float] = {}
        self.measured: dict[str, list[float]] = {}  # codec -> [seconds, megapixels] of points done
        self.prior_seconds_done = 0.0  # what the priors predicted for the points done
        for codec, _, image in work:
            name = codec.name
            self.remaining_mpx[name] = self.remaining_mpx.get(name, 0.0) + _mpx(image)
            self.parallel[name] = self.jobs if codec.model is None else 1
            default = DEFAULT_BASELINE_PRIOR_S_PER_MPX if codec.model is None else DEFAULT_MODEL_PRIOR_S_PER_MPX
            self.prior[name] = COST_PRIOR_S_PER_MPX.get(name, default)

    def done(self, codec: CodecSpec, image: ImageItem, seconds: float | None) -> None:
        """One point finished (``seconds``: its wall time; None for a point skipped without work)."""
        mpx = _mpx(image)
        self.remaining_mpx[codec.name] = max(0.0, self.remaining_mpx.get(codec.name, 0.0) - mpx)
        if seconds is not None:
            measured = self.measured.setdefault(codec.name, [0.0, 0.0])
            measured[0] += seconds
            measured[1] += mpx
            self.prior_seconds_done += self.prior.get(codec.name, DEFAULT_BASELINE_PRIOR_S_PER_MPX) * mpx

    def seconds_per_mpx(self, name: str) -> float:
        """Measured cost of codec ``name`` in this run, or its prior scaled to this machine."""
        measured = self.measured.get(name)
        if measured and measured[1] > 0:
            return measured[0] / measured[1]
        spent = sum(s for s, _ in self.measured.values())
        speed = spent / self.prior_seconds_done if self.prior_seconds_done > 0 else 1.0
        return self.prior[name] * speed

    def remaining_seconds(self) -> float:
        """Estimated wall seconds until every point is done."""
        return sum(mpx * self.seconds_per_mpx(name) / self.parallel[name]
                   for name, mpx in self.remaining_mpx.items() if mpx > 0)


def _mpx(image: ImageItem) -> float:
    return image.width * image.height / 1e6


def warm_up_metrics() -> None:
    """Import torch and run MS-SSIM once, so that no point's time includes that start-up (~2 s)."""
    blank = np.zeros((192, 192, 3), np.uint8)
    metrics.ms_ssim(blank, blank)


def _worker_init() -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    warm_up_metrics()


def _record(codec: CodecSpec, quality: float, image: ImageItem, result: dict[str, Any]) -> dict[str, Any]:
    return {"key": point_key(codec.settings, quality, image.sha256), "codec": codec.name,
            "quality": format_quality(quality), "image": image.name, "width": image.width,
            "height": image.height, **result}


def run_grid(codecs: list[CodecSpec], images: list[ImageItem], store: ResultStore, jobs: int = 1,
             device: str = "cpu", progress: bool | None = None,
             warn: Callable[[str], None] | None = None) -> RunOutcome:
    """Compute every missing point into ``store`` and return all rows of the grid."""
    from tqdm import tqdm

    warn = warn or (lambda message: print(message, file=sys.stderr))
    outcome = RunOutcome()
    failed: set[tuple[str, str]] = set()  # (codec, image) pairs a model refused

    def fail(codec: CodecSpec, quality: float | None, image: ImageItem, reason: str) -> None:
        what = f"{codec.name}" + (f" q={format_quality(quality)}" if quality is not None else "")
        outcome.skipped.append((image.name, f"{what}: {reason}"))
        warn(f"codec eval: warning: skipped {image.name} for {what}: {reason}")

    # Image by image, every codec on each image: the first image measures every codec (EtaEstimate).
    pending = [(c, q, im) for im in images for c in codecs for q in c.qualities
               if store.get(point_key(c.settings, q, im.sha256)) is None]
    baseline_work: dict[ImageItem, list[tuple[CodecSpec, float]]] = {}
    model_work: dict[ImageItem, list[tuple[CodecSpec, float]]] = {}
    for c, q, im in pending:
        (baseline_work if c.model is None else model_work).setdefault(im, []).append((c, q))
    parallel = jobs > 1 and sum(map(len, baseline_work.values())) > 1
    eta = EtaEstimate(pending, jobs if parallel else 1)
    for codec in {c.name: c for work in model_work.values() for c, _ in work}.values():
        learned.warm_up(codec.model, device)  # type: ignore[arg-type]  (loaded before any timing)
    if pending:
        warm_up_metrics()  # here for the models and jobs=1; worker processes do it in their initializer
    bar = tqdm(total=len(pending), desc="eval", unit="pt", disable=None if progress is None else not progress,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} points [{elapsed}{postfix}]")

    def advance(codec: CodecSpec | None = None, image: ImageItem | None = None, seconds: float | None = None) -> None:
        if codec is not None and image is not None:
            eta.done(codec, image, seconds)
            if seconds is not None:
                timing = outcome.timings.setdefault(codec.name, [0.0, 0])
                timing[0] += seconds
                timing[1] += 1
        left = eta.remaining_seconds()
        bar.set_postfix_str(f"ETA {tqdm.format_interval(left)}" if left > 0 else "", refresh=codec is None)
        if codec is not None:
            bar.update()

    def code_baseline_point(c: CodecSpec, q: float, im: ImageItem,
                            compute: Callable[[], tuple[dict[str, Any], float]]) -> None:
        seconds = None
        try:
            result, elapsed = compute()
            store.add(_record(c, q, im, result))
            outcome.computed += 1
            seconds = elapsed
        except Exception as err:  # noqa: BLE001 - one bad point must not stop the run
            fail(c, q, im, f"{type(err).__name__}: {err}")
        advance(c, im, seconds)

    def code_models(image: ImageItem) -> None:
        work = model_work.get(image, [])
        rgb = load_rgb(image.path) if work else None
        for c, q in work:
            seconds = None
            if (c.name, image.name) not in failed:
                start = time.perf_counter()
                try:
                    data, reconstruction, enc_s, dec_s = learned.code_image(c.model, rgb, q, device)  # type: ignore
                    store.add(_record(c, q, image, measure(rgb, data, reconstruction, enc_s, dec_s)))  # type: ignore
                    outcome.computed += 1
                    seconds = time.perf_counter() - start
                except InputError as err:
                    failed.add((c.name, image.name))
                    fail(c, None, image, str(err))
            advance(c, image, seconds)

    try:
        advance()  # the ETA from the priors, before the first point
        if parallel:
            # Baselines in worker processes first (submitted image by image), then the models here.
            context = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_init) as pool:
                futures = {pool.submit(code_baseline_timed, c.name, q, str(im.path)): (c, q, im)
                           for im, work in baseline_work.items() for c, q in work}
                try:
                    for future in cf.as_completed(futures):
                        code_baseline_point(*futures[future], future.result)
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
            for image in images:
                code_models(image)
        else:
            # One process: baselines, then models, on each image in turn.
            for image in images:
                for c, q in baseline_work.get(image, []):
                    code_baseline_point(c, q, image, lambda: code_baseline_timed(c.name, q, str(image.path)))
                code_models(image)
    finally:
        bar.close()
    for c in codecs:
        for q in c.qualities:
            for im in images:
                record = store.get(point_key(c.settings, q, im.sha256))
                if record is not None:
                    outcome.rows.append({**record, "codec": c.name, "image": im.name})
    outcome.cached = len(outcome.rows) - outcome.computed
    return outcome
