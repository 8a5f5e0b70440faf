"""Bjøntegaard delta rate between two rate–distortion curves (``bjontegaard`` package, Akima).

Rates are compared as log10(bpp) interpolated over the distortion metric (PSNR or MS-SSIM in
dB) with Akima splines; the package integrates only over the overlapping distortion range of
the two curves (``[max(min_a, min_t), min(max_a, max_t)]``), so no extrapolation happens.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

METHOD = "akima"


def clean_curve(rates: Sequence[float], dists: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Finite points sorted by distortion, keeping only those where rate and distortion both
    increase; ValueError if there are not as many rates as distortions."""
    if len(rates) != len(dists):
        raise ValueError(f"a curve needs one distortion per rate, got {len(rates)} rates and {len(dists)} distortions")
    pts = sorted((d, r) for r, d in zip(rates, dists)
                 if r is not None and d is not None and math.isfinite(r) and math.isfinite(d) and r > 0)
    kept: list[tuple[float, float]] = []
    for d, r in pts:
        if not kept or (d > kept[-1][0] and r > kept[-1][1]):
            kept.append((d, r))
    return np.array([r for _, r in kept]), np.array([d for d, _ in kept])


def bd_rate(anchor_rates: Sequence[float], anchor_dists: Sequence[float], test_rates: Sequence[float],
            test_dists: Sequence[float]) -> tuple[float | None, str]:
    """(BD-rate in percent, "") or (None, reason) when it cannot be computed."""
    ra, da = clean_curve(anchor_rates, anchor_dists)
    rt, dt = clean_curve(test_rates, test_dists)
    if len(ra) < 2 or len(rt) < 2:
        which = "anchor" if len(ra) < 2 else "test"
        return None, f"{which} curve has fewer than 2 usable points"
    low, high = max(da.min(), dt.min()), min(da.max(), dt.max())
    if high <= low:
        return None, (f"no overlap in quality (anchor {da.min():.2f}..{da.max():.2f}, "
                      f"test {dt.min():.2f}..{dt.max():.2f})")
    import bjontegaard

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = bjontegaard.bd_rate(ra, da, rt, dt, method=METHOD, require_matching_points=False, min_overlap=0)
    if value is None or not math.isfinite(value):
        return None, "interpolation failed"
    return float(value), ""


def overlap(anchor_dists: Sequence[float], test_dists: Sequence[float]) -> tuple[float, float] | None:
    """The overlapping distortion interval of two curves, or None."""
    a = [d for d in anchor_dists if d is not None and math.isfinite(d)]
    t = [d for d in test_dists if d is not None and math.isfinite(d)]
    if not a or not t:
        return None
    low, high = max(min(a), min(t)), min(max(a), max(t))
    return (low, high) if high > low else None
