"""Conditional Gaussian: compressai's ``GaussianConditional`` as a latent codec, given scales and means."""
from __future__ import annotations

import math
from typing import Any

import torch

from codec.entropy import DEFAULT_CODER, decode_gaussian, encode_gaussian, entropy_tables  # first: imports compressai lean
from compressai.entropy_models import GaussianConditional  # noqa: I001
from codec.latent_codecs.base import LatentCodec, Shapes, Strings, check_shape, single_substreams


def scale_table() -> torch.Tensor:
    """The 64 scales of the Gaussian CDF tables: compressai's ``get_scale_table()``.

    Written here because ``compressai.models`` imports all of compressai (seconds); a test
    checks the two are equal.
    """
    return torch.exp(torch.linspace(math.log(0.11), math.log(256), 64))


class GaussianConditionalLatentCodec(LatentCodec):
    """Codes ``y`` under N(means, scales), quantised around the means, as stream ``name``,
    with the coder backend named ``coder``."""

    def __init__(self, gaussian_conditional: GaussianConditional, name: str = "y", coder: str = DEFAULT_CODER) -> None:
        self.gaussian_conditional = gaussian_conditional
        self.name = name
        self.coder = coder

    def forward(self, y: torch.Tensor, *params: torch.Tensor) -> dict[str, Any]:
        """Likelihoods with additive noise; ``y_hat`` rounded around the means (straight-through
        gradient), as the synthesis sees it at test time."""
        scales, means = params
        with torch.autocast(y.device.type, enabled=False):
            _, likelihoods = self.gaussian_conditional(y, scales, means=means)
        y_hat = y + (torch.round(y - means) + means - y).detach()
        return {"likelihoods": {self.name: likelihoods}, "y_hat": y_hat}

    def compress(self, y: torch.Tensor, *params: torch.Tensor) -> dict[str, Any]:
        scales, means = params
        strings = encode_gaussian(self.gaussian_conditional, y, scales, means, self.coder)
        y_hat = self.gaussian_conditional.quantize(y, "dequantize", means)
        return {"strings": {self.name: [[s] for s in strings]}, "shapes": {self.name: tuple(y.shape[1:])}, "y_hat": y_hat}

    def decompress(self, strings: Strings, shapes: Shapes, *params: torch.Tensor) -> dict[str, Any]:
        scales, means = params
        if check_shape(shapes, self.name, scales.dim() - 1) != tuple(scales.shape[1:]):
            raise ValueError(f"stream {self.name!r} has shape {shapes[self.name]}, its parameters {tuple(scales.shape[1:])}")
        return {"y_hat": decode_gaussian(self.gaussian_conditional, single_substreams(strings, self.name), scales, means,
                                          self.coder)}

    def update(self, force: bool = False) -> bool:
        updated = self.gaussian_conditional.update_scale_table(scale_table(), force=force)
        entropy_tables(self.gaussian_conditional)  # converted and validated now, once
        return updated
