"""Decoder-side reconstruction offsets of quantised latents.

A latent coded under N(mean, scale) is sent as the integer ``k = round(y - mean)``; the
decoder has always rebuilt it as ``mean + k``, the centre of its quantisation bin. The
latents are not spread evenly within their bins: where the scale is small, a non-zero ``k``
mostly comes from a value just past the rounding threshold (``|y - mean|`` near 0.5, on the
side of the mean), so the bin's centre is too far from the mean. Classical codecs reconstruct
such bins nearer zero for the same reason (the reconstruction offsets of H.264 and HEVC's
dead-zone quantisers).

A model with offsets feeds its synthesis ``mean + k + sign(k) * offsets[index, min(|k|, 3) - 1]``
instead, where ``index`` is the latent's entropy table index (its quantised scale, which the
decoder has bit for bit) and the table is a trained parameter of the model (learned, with
the rest frozen or jointly, on the distortion alone). The coded symbols, the entropy
parameters and every context a model reads stay those of ``mean + k``: the offsets change
only what the synthesis sees, so the rate is the same and the bitstream format is unchanged;
a weights file whose config says ``reconstruction_offsets`` carries the table
(docs/bitstream.md, "Reconstruction offsets").
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from codec.latent_codecs.gaussian_conditional import scale_table

#: Offsets for |k| = 1, 2 and 3 or more (a column each).
MAGNITUDES = 3


class ReconstructionOffsets(nn.Module):
    """The table of reconstruction offsets, one row per entropy table index (scale) and one
    column per magnitude of the symbol; zero (the bin centres) until trained."""

    def __init__(self, indexes: int = 64) -> None:
        super().__init__()
        self.offsets = nn.Parameter(torch.zeros(indexes, MAGNITUDES))

    def of(self, symbols: torch.Tensor, indexes: torch.Tensor) -> torch.Tensor:
        """The offset of every latent (float, differentiable in the table) from its integer
        symbol ``k`` (any integer or integral float tensor) and table index: zero where
        ``k == 0``, ``sign(k) * offsets[index, min(|k|, 3) - 1]`` elsewhere."""
        magnitude = symbols.abs().clamp(1, MAGNITUDES).long() - 1
        rows = indexes.long().clamp(0, self.offsets.shape[0] - 1)
        values = self.offsets[rows, magnitude]
        return values * torch.sign(symbols).to(values.dtype)

    def of_scales(self, symbols: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
        """:meth:`of` with the float scales in place of the table indexes (training and
        refinement): the index a coder gives each scale (:func:`table_indexes`)."""
        return self.of(symbols, table_indexes(scales))

    def of_numpy(self, symbols: np.ndarray, indexes: np.ndarray) -> np.ndarray:
        """:meth:`of` on numpy arrays (the band decoders), float32."""
        table = self.offsets.detach().cpu().numpy().astype(np.float32)
        magnitude = np.clip(np.abs(symbols), 1, MAGNITUDES).astype(np.int64) - 1
        values = table[np.clip(indexes.astype(np.int64), 0, len(table) - 1), magnitude]
        return values * np.sign(symbols).astype(np.float32)


def table_indexes(scales: torch.Tensor) -> torch.Tensor:
    """The entropy table index of every float scale: the number of entries of the 64-scale
    table (its last excluded) strictly below the scale, the scale first held at the table's
    lowest entry, as :func:`codec.entropy.compressai_models.scale_indexes` gives it from a
    built table."""
    table = scale_table()
    table = table[:-1].to(scales.device, scales.dtype)
    return torch.bucketize(scales.detach().clamp_min(float(table[0])), table)
