"""Rate control: pick the quality whose file meets a size, bpp or PSNR target.

The rate of a model rises monotonically with its continuous quality (gain units
interpolate between trained levels), and so does its PSNR, up to small non-monotonic
steps between neighbouring fractional qualities. The search brackets the target between
the lowest and highest quality and bisects on real encodes (``MAX_ENCODES`` in all, decodes
too for a PSNR target), keeping the best file that meets the target:

* ``bpp`` / ``size``: the largest quality whose file is at most the target;
* ``psnr``: the smallest quality whose decoded PSNR-RGB is at least the target.

A target outside what the model reaches is an :class:`~codec.errors.InputError` naming the
reachable range, or, with ``best_effort``, the nearest reachable file and a
:class:`TargetWarning`.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from codec.errors import InputError, TargetWarning, shown

#: Encodes one search may spend: the two ends of the range, then bisection steps.
MAX_ENCODES = 8
#: Refined encodes a search with an effort above 0 adds: the chosen quality, then bisection.
REFINED_ENCODES = 3
#: Highest PSNR target accepted: at 100 dB an 8-bit image is all but lossless.
MAX_PSNR = 100.0

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kKmM]?)(?:i?[bB])?\s*$")


@dataclass(frozen=True)
class Target:
    """What the file must meet: ``kind`` is ``"bpp"``, ``"size"`` (bytes) or ``"psnr"`` (dB)."""

    kind: str
    value: float
    best_effort: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("bpp", "size", "psnr"):
            raise InputError(f"unknown target {self.kind!r}: use bpp, size or psnr")
        if not self.value > 0:
            raise InputError(f"{self.kind} target must be positive, got {self.value:g}")
        if self.kind == "psnr" and not self.value <= MAX_PSNR:
            raise InputError(f"psnr target must be at most {MAX_PSNR:g} dB (8-bit images), got {self.value:g}")

    def describe(self, value: float) -> str:
        return {"bpp": f"{value:.4f} bpp", "size": f"{value:.0f} bytes", "psnr": f"{value:.2f} dB"}[self.kind]


def parse_size(text: str) -> int:
    """``"50k"`` -> 51200, ``"1.5M"`` -> 1572864, ``"2000"`` -> 2000 (bytes; ``k``, ``kB``, ``KiB`` all
    mean 1024); InputError otherwise."""
    found = _SIZE.match(str(text))
    if not found:
        raise InputError(f"size {text!r} is not a byte count like 20000, 50k or 1.5M")
    scale = {"": 1, "k": 1024, "m": 1024**2}[found.group(2).lower()]
    amount = float(found.group(1)) * scale
    if not amount < 2**63:
        raise InputError(f"size {shown(text)} is too large")
    count = int(amount)
    if count < 1:
        raise InputError(f"size {text!r} is less than one byte: give a byte count like 20000, 50k or 1.5M")
    return count


def make_target(kind: str, value: Any, best_effort: bool = False) -> Target:
    """A :class:`Target` from user input (``size`` also as ``"50k"``); InputError if invalid."""
    if isinstance(value, bool):  # True would pass for 1
        raise InputError(f"{kind} target must be a number, got {value!r}")
    if kind == "size":
        return Target("size", float(parse_size(value)), best_effort)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{kind} target must be a number, got {shown(value)}") from None
    return Target(kind, number, best_effort)


@dataclass
class Attempt:
    """One real encode of the search: its quality, file and measured value."""

    quality: float
    data: bytes
    value: float


def encode_to_target(image: Any, model: Any, target: Target, device: str = "cpu", effort: int = 0,
                     progress: bool = False) -> tuple[bytes, Attempt]:
    """Encode ``image`` so that its file meets ``target``; returns (file bytes, chosen attempt).

    With ``effort`` above 0 the search first runs at effort 0; then the quality it chose is
    encoded at that effort and the bracket is narrowed with refined encodes (at most
    :data:`REFINED_ENCODES`), since refinement moves the rate: the result is the best
    refined file that meets the target, or the effort-0 one if none does. Refinement also
    costs a little PSNR, so for a PSNR target a refined file that misses is followed up the
    quality range (:func:`_refined_above`), and kept only if smaller than the effort-0 file.
    """
    import numpy as np

    from codec import api
    from codec.encoding.effort import schedule_for
    from codec.evaluation import metrics
    from codec.image_io import load_image

    schedule_for(effort)  # a bad effort fails before any encoding
    loaded = load_image(image, api.check_image_size)
    source = loaded.rgb[:, :, 0] if loaded.grayscale else loaded.rgb
    net = api.resolve_model(model, device)
    height, width = loaded.rgb.shape[:2]

    def attempt(quality: float, level: int = 0) -> Attempt:
        data = api.encode(source, model=net, quality=quality, device=device, effort=level, progress=progress)
        if target.kind == "psnr":
            decoded = np.asarray(api.decode(data, device=device, model=net).convert("RGB"))
            value = metrics.psnr(loaded.rgb, decoded)
        elif target.kind == "bpp":
            value = metrics.bpp(len(data), width, height)
        else:
            value = float(len(data))
        return Attempt(quality, data, value)

    def meets(a: Attempt) -> bool:
        return a.value >= target.value if target.kind == "psnr" else a.value <= target.value

    best, missed = _search(attempt, meets, target, net.quality_range)
    if effort == 0:
        return best.data, best
    refined = attempt(best.quality, effort)
    if not meets(refined) and target.kind == "psnr":
        # Refinement trades a little distortion for rate: the refined file at the same quality
        # misses a PSNR target it barely met. Look a little higher, and keep the result only
        # if it is smaller than the effort-0 file.
        found = _refined_above(attempt, meets, refined.quality, net.quality_range[1], effort, REFINED_ENCODES - 1)
        return (found.data, found) if found is not None and len(found.data) < len(best.data) else (best.data, best)
    if not meets(refined):
        return best.data, best
    if missed is not None:
        refined = _bisect(attempt, meets, refined, missed, effort, REFINED_ENCODES - 1)
    return refined.data, refined


def _bisect(attempt: Callable[..., Attempt], meets: Callable[[Attempt], bool], good: Attempt, failed: float,
            effort: int, encodes: int) -> Attempt:
    """The attempt nearest ``failed`` that meets the target, after ``encodes`` refined
    encodes halving the bracket between ``good`` (meets) and ``failed`` (does not)."""
    for _ in range(encodes):
        trial = attempt((good.quality + failed) / 2, effort)
        if meets(trial):
            good = trial
        else:
            failed = trial.quality
    return good


#: The first step up the quality range from a refined file that missed a PSNR target.
PSNR_STEP_UP = 0.1


def _refined_above(attempt: Callable[..., Attempt], meets: Callable[[Attempt], bool], failed: float, top: float,
                   effort: int, encodes: int) -> Attempt | None:
    """The lowest quality above ``failed`` whose refined file meets a PSNR target, searched with
    at most ``encodes`` refined encodes (steps up that double, then bisection); None if none does."""
    found, step = None, PSNR_STEP_UP
    while encodes and found is None and failed < top:
        trial = attempt(min(top, failed + step), effort)
        encodes -= 1
        if meets(trial):
            found = trial
        else:
            failed, step = trial.quality, 2 * step
    return _bisect(attempt, meets, found, failed, effort, encodes) if found is not None else None


def _search(attempt: Callable[[float], Attempt], meets: Callable[[Attempt], bool], target: Target,
            quality_range: tuple[float, float]) -> tuple[Attempt, float | None]:
    """The bracketing search at effort 0: the best attempt that meets the target, and the
    nearest quality on the other side that did not (None if the range's end meets it)."""
    low_q, high_q = quality_range
    low, high = attempt(low_q), attempt(high_q)
    if target.kind == "psnr":
        if meets(low):
            return low, None
        if not meets(high):
            return _unreachable(target, low, high, high), None
    else:
        if meets(high):
            return high, None
        if not meets(low):
            return _unreachable(target, low, high, low), None
    best = high if target.kind == "psnr" else low  # meets the target; the search improves on it
    below, above = low_q, high_q
    for _ in range(MAX_ENCODES - 2):
        middle = attempt((below + above) / 2)
        if meets(middle):  # the bracket only narrows, so a meeting middle is the best so far
            best = middle
            if target.kind == "psnr":
                above = middle.quality
            else:
                below = middle.quality
        elif target.kind == "psnr":
            below = middle.quality
        else:
            above = middle.quality
    return best, below if target.kind == "psnr" else above


def _unreachable(target: Target, low: Attempt, high: Attempt, nearest: Attempt) -> Attempt:
    reach = f"{target.describe(low.value)} at quality {low.quality:g} to {target.describe(high.value)} at {high.quality:g}"
    if not target.best_effort:
        raise InputError(f"{target.kind} target {target.describe(target.value)} cannot be met for this image: "
                         f"the model reaches {reach} (--best-effort writes the nearest)")
    warnings.warn(f"{target.kind} target {target.describe(target.value)} cannot be met (the model reaches {reach}); "
                  f"wrote the nearest file, {target.describe(nearest.value)} at quality {nearest.quality:g}",
                  TargetWarning, stacklevel=4)
    return nearest
