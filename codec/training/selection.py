"""Model selection on held-out training images: real files, rate and PSNR, BD-rate.

Kodak never enters here: it is for reported figures only. Candidates are compared on the
images the trainer holds out of training (:func:`codec.training.data.split_holdout`).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from codec import api
from codec.evaluation.bd import bd_rate
from codec.evaluation.metrics import psnr
from codec.models import VariableRateModel

#: Qualities a selection compares models at: every trained level of the default range.
SELECTION_QUALITIES = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)


def code_images(model: VariableRateModel, images: Sequence[np.ndarray],
                qualities: Sequence[float]) -> dict[float, tuple[float, float]]:
    """``{quality: (bpp, PSNR)}`` over ``images`` (HxWx3 uint8), each coded to a real file and
    decoded back; bpp is pooled (all bits over all pixels), PSNR averaged per image."""
    model.update(force=True)
    results = {}
    for q in qualities:
        total_bytes = pixels = 0
        psnrs = []
        for rgb in images:
            x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255
            data = api.encode_tensor(x, model, q)[0]
            decoded = (api.decode_to_tensor([data], model=model)[0] * 255).round().to(torch.uint8)
            total_bytes += len(data)
            pixels += rgb.shape[0] * rgb.shape[1]
            psnrs.append(psnr(rgb, decoded.permute(1, 2, 0).numpy()))
        results[float(q)] = (8 * total_bytes / max(pixels, 1), float(np.mean(psnrs)) if psnrs else float("nan"))
    return results


def curve_bd_rate(reference: dict[float, tuple[float, float]], candidate: dict[float, tuple[float, float]]) -> float:
    """BD-rate (percent, negative is better) of ``candidate`` against ``reference``."""
    ref, cand = list(reference.values()), list(candidate.values())
    value, reason = bd_rate([r for r, _ in ref], [d for _, d in ref], [r for r, _ in cand], [d for _, d in cand])
    if value is None:
        raise ValueError(f"cannot compare the curves: {reason}")
    return value
