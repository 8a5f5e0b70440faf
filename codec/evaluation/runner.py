"""Run the evaluation grid: every (codec, quality, image) point, resumable through a result cache.

Classical baselines can run in worker processes (``jobs > 1``); learned models always run in
the main process. Every finished point is appended to the cache at once, so an interrupted
run resumes where it stopped and a repeated run does no coding at all.
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
from codec.evaluation.datasets import sha256_file
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
        items.append(ImageItem(path, name, sha256_file(path), rgb.shape[1], rgb.shape[0]))
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


def _worker_init() -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


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

    pending = [(c, q, im) for c in codecs for q in c.qualities for im in images
               if store.get(point_key(c.settings, q, im.sha256)) is None]
    bar = tqdm(total=len(pending), desc="eval", unit="pt", disable=None if progress is None else not progress)
    try:
        baseline_work = [(c, q, im) for c, q, im in pending if c.model is None]
        if jobs > 1 and len(baseline_work) > 1:
            context = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_init) as pool:
                futures = {pool.submit(code_baseline, c.name, q, str(im.path)): (c, q, im)
                           for c, q, im in baseline_work}
                try:
                    for future in cf.as_completed(futures):
                        c, q, im = futures[future]
                        try:
                            store.add(_record(c, q, im, future.result()))
                            outcome.computed += 1
                        except Exception as err:  # noqa: BLE001 - one bad point must not stop the run
                            fail(c, q, im, f"{type(err).__name__}: {err}")
                        bar.update()
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
        else:
            for c, q, im in baseline_work:
                try:
                    store.add(_record(c, q, im, code_baseline(c.name, q, str(im.path))))
                    outcome.computed += 1
                except Exception as err:  # noqa: BLE001
                    fail(c, q, im, f"{type(err).__name__}: {err}")
                bar.update()
        model_work = [(c, q, im) for c, q, im in pending if c.model is not None]
        for codec in {c.name: c for c, _, _ in model_work}.values():
            learned.warm_up(codec.model, device)  # type: ignore[arg-type]
        for image in images:
            work = [(c, q) for c, q, im in model_work if im is image]
            if not work:
                continue
            rgb = load_rgb(image.path)
            for c, q in work:
                if (c.name, image.name) in failed:
                    bar.update()
                    continue
                try:
                    data, reconstruction, enc_s, dec_s = learned.code_image(c.model, rgb, q, device)  # type: ignore[arg-type]
                    store.add(_record(c, q, image, measure(rgb, data, reconstruction, enc_s, dec_s)))
                    outcome.computed += 1
                except InputError as err:
                    failed.add((c.name, image.name))
                    fail(c, None, image, str(err))
                bar.update()
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
