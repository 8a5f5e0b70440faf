"""An encoder-side correction of the latents from what the hyperprior predicts of them.

The analysis transform makes ``y`` without knowing the entropy model's prediction; the
hyperprior's ``(scales, means)`` of every latent are known to the encoder once ``z`` is
quantised. :class:`PriorCorrection` moves each latent given its own prediction, before
rounding::

    y --h_a--> z --> z_hat --h_s--> (scales, means)
    y, scales, means --PriorCorrection--> y + delta --[coded as before]--> y_hat

Only the encoder runs it: the decoder, the bitstream and files written without it are
unchanged. It is pointwise (1x1 convolutions over the channels of one position), so a band
of rows is corrected from that band's parameters alone, as the banded coders need. Its
inputs are the residual ``y - means`` and the log of the scale of the table entry the coder
will use (``scale_table()[index]``), the same numbers whether the entropy parameters are
float or exact integers; its output convolution starts at zero, so weights without it are
reproduced until it is trained.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from codec.entropy.compressai_models import scale_indexes
from codec.latent_codecs.gaussian_conditional import scale_table

if TYPE_CHECKING:
    from compressai.entropy_models import GaussianConditional


class PriorCorrection(nn.Module):
    """``y + f(y - means, log scale)`` for a small pointwise network ``f`` of ``hidden`` channels."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(2 * channels, hidden, 1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(hidden, hidden, 1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(hidden, channels, 1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, y: torch.Tensor, table_scales: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """The corrected ``y`` given the table scale and the mean of every latent (same shape as ``y``)."""
        features = torch.cat([y - means, table_scales.log()], dim=1)
        return y + self.net(features.to(y.dtype))

    def from_indexes(self, y: torch.Tensor, indexes: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` with the table index of every latent (integer entropy parameters)."""
        table = scale_table().to(y.device)
        return self(y, table[indexes.to(y.device).long()], means.to(y.device))

    def from_scales(self, y: torch.Tensor, gaussian_conditional: GaussianConditional, scales: torch.Tensor,
                    means: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` with the float scales of ``h_s``, mapped to the table entries the coder
        uses (:func:`~codec.entropy.compressai_models.scale_indexes` of
        :func:`~codec.latent_codecs.gaussian_conditional.scale_table`, the coder's table once
        the model is updated; training need not update it)."""
        with torch.no_grad():
            indexes = scale_indexes(gaussian_conditional, scales.detach().float(), scale_table())
        return self.from_indexes(y, indexes, means)
