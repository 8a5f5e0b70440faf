"""Factorized prior: compressai's ``EntropyBottleneck`` as a latent codec (Ballé et al. 2018)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from codec.entropy import (  # first: imports compressai lean
    DEFAULT_CODER,
    bottleneck_values,
    decode_bottleneck_symbols,
    encode_bottleneck,
    entropy_tables,
)
from compressai.entropy_models import EntropyBottleneck  # noqa: I001
from codec.latent_codecs.base import LatentCodec, Shapes, Strings, check_shape, single_substreams


class EntropyBottleneckLatentCodec(LatentCodec):
    """Codes a latent ``[B, C, h, w]`` with one learned density per channel, as stream ``name``,
    with the coder backend named ``coder``. ``compress`` and ``decompress`` also return the
    coded int32 ``symbols`` (``y_hat`` less the channel medians): the exact input of integer
    entropy parameters (:mod:`codec.latent_codecs.integer_parameters`)."""

    def __init__(self, entropy_bottleneck: EntropyBottleneck, name: str = "z", coder: str = DEFAULT_CODER) -> None:
        self.entropy_bottleneck = entropy_bottleneck
        self.name = name
        self.coder = coder

    def forward(self, y: torch.Tensor, *params: torch.Tensor) -> dict[str, Any]:
        # Likelihoods in float32 even under autocast: bf16 is too coarse for rates.
        with torch.autocast(y.device.type, enabled=False):
            y_hat, likelihoods = self.entropy_bottleneck(y.float())
        return {"likelihoods": {self.name: likelihoods}, "y_hat": y_hat}

    def compress(self, y: torch.Tensor, *params: torch.Tensor) -> dict[str, Any]:
        strings = encode_bottleneck(self.entropy_bottleneck, y, self.coder)
        shape = tuple(y.shape[1:])
        symbols = decode_bottleneck_symbols(self.entropy_bottleneck, strings, shape[1:], self.coder)
        return {"strings": {self.name: [[s] for s in strings]}, "shapes": {self.name: shape},
                "y_hat": bottleneck_values(self.entropy_bottleneck, symbols), "symbols": symbols}

    def decompress(self, strings: Strings, shapes: Shapes, *params: torch.Tensor) -> dict[str, Any]:
        channels, height, width = check_shape(shapes, self.name, 3)
        if channels != self.entropy_bottleneck.channels:
            raise ValueError(f"stream {self.name!r} has {channels} channels, the model {self.entropy_bottleneck.channels}")
        symbols = decode_bottleneck_symbols(self.entropy_bottleneck, single_substreams(strings, self.name),
                                            (height, width), self.coder)
        return {"y_hat": bottleneck_values(self.entropy_bottleneck, symbols), "symbols": symbols}

    def _medians(self) -> torch.Tensor:
        """The channel medians ``[1, C, 1, 1]`` the coder centres ``z`` on."""
        return self.entropy_bottleneck._get_medians().reshape(1, -1, 1, 1)

    def symbols(self, z: torch.Tensor) -> torch.Tensor:
        """The int32 symbols :meth:`compress` codes for ``z`` (rounded, less the channel medians), without coding them."""
        return self.entropy_bottleneck.quantize(z, "symbols", self._medians())

    def centred(self, z: torch.Tensor, round_fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``z_hat`` with ``round_fn`` in place of rounding, centred on the channel medians as the coder centres."""
        medians = self._medians()
        return round_fn(z - medians) + medians

    def bits(self, z_hat: torch.Tensor) -> torch.Tensor:
        """Bits of (possibly soft) quantised latents under the factorized prior, per image (differentiable)."""
        bottleneck = self.entropy_bottleneck
        channels_first = z_hat.transpose(0, 1)  # [C, B, h, w]
        values = channels_first.reshape(channels_first.shape[0], 1, -1)
        likelihood, _, _ = bottleneck._likelihood(values)
        likelihood = bottleneck.likelihood_lower_bound(likelihood).reshape(channels_first.shape).transpose(0, 1)
        return -likelihood.log2().flatten(1).sum(1)

    def update(self, force: bool = False) -> bool:
        updated = self.entropy_bottleneck.update(force=force)
        entropy_tables(self.entropy_bottleneck)  # converted and validated now, once
        return updated
