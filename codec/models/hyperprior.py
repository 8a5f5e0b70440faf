"""The mean-scale hyperprior of Ballé et al. (2018) / Minnen et al. (2018), variable rate.

Built from compressai's layers (GDN, strided convolutions) as the conventional reference
model; gain units give a continuous quality range from one set of weights.
"""
from __future__ import annotations

import torch
from torch import nn

from codec.models.base import DEFAULT_LAMBDAS, VariableRateModel  # first: imports compressai lean
from compressai.layers import GDN  # noqa: I001


def conv(in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 2) -> nn.Conv2d:
    """compressai's ``models.utils.conv`` (that module imports all of compressai)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)


def deconv(in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    """compressai's ``models.utils.deconv``."""
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=stride,
                              output_padding=stride - 1, padding=kernel_size // 2)


class MeanScaleHyperprior(VariableRateModel):
    """GDN analysis/synthesis (4 stride-2 stages) with a mean-scale hyperprior."""

    def __init__(self, channels: int = 128, latent_channels: int = 192, lambdas: tuple[float, ...] = DEFAULT_LAMBDAS) -> None:
        super().__init__(latent_channels, channels, lambdas)
        self.name = "hyperprior"
        self.pad_multiple = 64
        n, m = channels, latent_channels
        self.analysis = nn.Sequential(
            conv(3, n), GDN(n), conv(n, n), GDN(n), conv(n, n), GDN(n), conv(n, m),
        )
        self.synthesis = nn.Sequential(
            deconv(m, n), GDN(n, inverse=True), deconv(n, n), GDN(n, inverse=True),
            deconv(n, n), GDN(n, inverse=True), deconv(n, 3),
        )
        self.h_a = nn.Sequential(
            conv(m, n, stride=1, kernel_size=3), nn.LeakyReLU(inplace=True),
            conv(n, n), nn.LeakyReLU(inplace=True), conv(n, n),
        )
        self.h_s = nn.Sequential(
            deconv(n, m), nn.LeakyReLU(inplace=True),
            deconv(m, m * 3 // 2), nn.LeakyReLU(inplace=True),
            conv(m * 3 // 2, m * 2, stride=1, kernel_size=3),
        )

    def g_a(self, x: torch.Tensor) -> torch.Tensor:
        return self.analysis(x)

    def g_s(self, y: torch.Tensor) -> torch.Tensor:
        return self.synthesis(y)
