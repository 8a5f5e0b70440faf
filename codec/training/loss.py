"""The rate-distortion training loss of our models."""
from __future__ import annotations

import math

import torch
from torch import nn

from codec.models.base import VariableRateModel


def rd_loss(model: VariableRateModel, x: torch.Tensor, quality: torch.Tensor, net: nn.Module | None = None,
            rate: str = "noise") -> dict:
    """Per-sample RD loss ``lambda(q) * 255^2 * MSE + bpp``, averaged over the batch.

    ``net`` runs the forward pass when given (e.g. a DistributedDataParallel wrapper of
    ``model``); ``model`` supplies the lambdas. ``rate``: how the bits are counted, of the
    latents with uniform noise (``"noise"``) or of the rounded ones (``"rounded"``,
    ``"soft-rounded"``; see :meth:`~codec.models.base.VariableRateModel.forward`).
    """
    out = (net or model)(x, quality, rate=rate)
    num_pixels = x.shape[-2] * x.shape[-1]
    if rate != "noise":
        bits = out["bits"]
    else:
        bits = sum(l.clamp_min(1e-9).log().flatten(1).sum(1) for l in out["likelihoods"].values()) / -math.log(2)
    bpp = bits / num_pixels
    mse = (out["x_hat"].float() - x).pow(2).flatten(1).mean(1)
    loss = (model.lmbda(quality) * 255**2 * mse + bpp).mean()
    return {"loss": loss, "bpp": bpp.mean(), "mse": mse.mean(), "x_hat": out["x_hat"]}
