"""Gain units: one set of weights, a continuous range of rates (Cui et al., CVPR 2021).

Each of ``levels`` trained quality levels owns a positive gain vector over the latent
channels; latents are multiplied by it before quantisation and by an inverse gain after.
A fractional quality interpolates the two neighbouring levels geometrically, so the rate
varies smoothly between them. Quality ``q`` runs from 1 to ``levels``.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def interpolate_levels(log_table: torch.Tensor, quality: torch.Tensor | float) -> torch.Tensor:
    """Rows of ``log_table`` ([levels, C], logarithms) at fractional ``quality`` (1..levels):
    linear in the logarithm between the two neighbouring levels, i.e. geometric. Returns
    [B, C] for B qualities; ValueError for a quality outside the range or not finite."""
    levels = log_table.shape[0]
    q = torch.as_tensor(quality, dtype=log_table.dtype, device=log_table.device).reshape(-1)
    if not torch.isfinite(q).all() or (q < 1).any() or (q > levels).any():
        raise ValueError(f"quality must be within [1, {levels}], got {q.tolist()}")
    pos = q - 1
    lower = pos.floor().long().clamp(max=levels - 1)
    upper = (lower + 1).clamp(max=levels - 1)
    frac = (pos - lower.to(pos.dtype))[:, None]
    return log_table[lower] * (1 - frac) + log_table[upper] * frac


class GainUnits(nn.Module):
    """Per-quality channel gains ``gain(q)`` and inverse gains ``inverse_gain(q)``."""

    def __init__(self, levels: int, channels: int, low: float = 0.5, high: float = 4.0) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        self.levels = levels
        init = torch.linspace(math.log(low), math.log(high), levels)[:, None].repeat(1, channels)
        self.log_gain = nn.Parameter(init.clone())
        self.log_inverse_gain = nn.Parameter(-init.clone())

    @property
    def quality_range(self) -> tuple[float, float]:
        return 1.0, float(self.levels)

    def _interpolate(self, table: torch.Tensor, quality: torch.Tensor | float) -> torch.Tensor:
        return interpolate_levels(table, quality).exp()[:, :, None, None]  # [B or 1, C, 1, 1]

    def gain(self, quality: torch.Tensor | float) -> torch.Tensor:
        """Gain applied to latents before quantisation; broadcastable to [B, C, H, W]."""
        return self._interpolate(self.log_gain, quality)

    def inverse_gain(self, quality: torch.Tensor | float) -> torch.Tensor:
        """Gain applied to dequantised latents before synthesis."""
        return self._interpolate(self.log_inverse_gain, quality)
