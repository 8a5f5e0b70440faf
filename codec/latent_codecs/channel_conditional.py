"""Channel-conditional hyperprior (Minnen & Singh 2020, "Channel-wise autoregressive entropy
models for learned image compression"), composed of latent codecs.

::

    y --h_a--> z --[hyper codec: stream "z"]--> z_hat --h_s--> features (scales, means of all y)
    slice k of y, k = 0..S-1: (scales, means) = features of its channels + slice_transforms[k](
        features, y_hat of slices 0..k-1) --[latent codec: stream "y<k>"]--> y_hat of slice k

The channels of ``y`` are cut into ``S`` equal slices coded one after the other; each slice's
entropy parameters see the slices decoded before it, which the hyperprior alone cannot. A
slice transform predicts a correction to the hyperprior's own parameters, so one whose last
layer is zero codes exactly as the hyperprior does: a model is fine-tuned from hyperprior
weights without a restart.

With integer entropy parameters (``integer`` given), ``compress`` and ``decompress`` take the
table indexes and means of every slice from
:class:`~codec.latent_codecs.integer_parameters.IntegerChannelConditionalParameters`, which
also carries the fixed-point ``y_hat`` from slice to slice, so a decoder derives the encoder's
parameters bit for bit on every machine; training (``forward``) uses the float transforms.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from codec.latent_codecs.base import LatentCodec, Shapes, Strings
from codec.latent_codecs.entropy_bottleneck import EntropyBottleneckLatentCodec
from codec.latent_codecs.gaussian_conditional import GaussianConditionalLatentCodec
from codec.latent_codecs.integer_parameters import RANGE_BITS, IntegerChannelConditionalParameters

#: The float transforms see their inputs clamped as the integer ones do (``+-2^RANGE_BITS``).
INPUT_RANGE = float(2**RANGE_BITS)


class ChannelConditionalLatentCodec(LatentCodec):
    """``hyper`` codes ``z = h_a(y)``; ``latents[k]`` codes slice ``k`` of ``y`` with parameters
    from ``h_s(z_hat)`` corrected by ``slice_transforms[k]``.

    Streams, in file order: the hyper codec's, then one per slice. ``downsampling`` is the
    ratio of ``y``'s to ``z``'s spatial size.
    """

    def __init__(self, h_a: nn.Module, h_s: nn.Module, slice_transforms: Sequence[nn.Module],
                 hyper: EntropyBottleneckLatentCodec, latents: Sequence[GaussianConditionalLatentCodec],
                 downsampling: int = 4, integer: IntegerChannelConditionalParameters | None = None) -> None:
        if len(slice_transforms) != len(latents):
            raise ValueError("one slice transform per slice codec")
        self.h_a, self.h_s = h_a, h_s
        self.slice_transforms = list(slice_transforms)
        self.hyper, self.latents = hyper, list(latents)
        self.downsampling = downsampling
        self.integer = integer

    @property
    def stream_names(self) -> tuple[str, ...]:
        """Names of the streams, in file order."""
        return (self.hyper.name, *(latent.name for latent in self.latents))

    def hyper_latents(self, y: torch.Tensor) -> torch.Tensor:
        """``z = h_a(y)``, before quantisation."""
        return self.h_a(y)

    def shapes(self, y_shape: tuple[int, ...], hyper_channels: int) -> Shapes:
        """Per-image shapes of every stream for a latent ``y`` of ``y_shape`` (C, H, W)."""
        channels, height, width = y_shape
        d = self.downsampling
        slice_shape = (channels // len(self.latents), height, width)
        return {self.hyper.name: (hyper_channels, -(-height // d), -(-width // d)),
                **{latent.name: slice_shape for latent in self.latents}}

    def _slice_parameters(self, k: int, features: torch.Tensor, previous: list[torch.Tensor]
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """Float (scales, means) of slice ``k``: the hyperprior's, plus the slice transform's
        correction from the features and the slices before."""
        context = torch.cat([features, *previous], dim=1).clamp(-INPUT_RANGE, INPUT_RANGE)
        delta = self.slice_transforms[k](context).float()
        n, channels = delta.shape[1] // 2, features.shape[1] // 2
        scales = features[:, k * n:(k + 1) * n] + delta[:, :n]
        means = features[:, channels + k * n:channels + (k + 1) * n] + delta[:, n:]
        return scales, means

    def _slices(self, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return y.chunk(len(self.latents), dim=1)

    def forward(self, y: torch.Tensor, *params: torch.Tensor) -> dict[str, Any]:
        hyper_out = self.hyper.forward(self.h_a(y).float())
        features = self.h_s(hyper_out["y_hat"]).float()
        likelihoods, previous = dict(hyper_out["likelihoods"]), []
        for k, (latent, y_k) in enumerate(zip(self.latents, self._slices(y))):
            out = latent.forward(y_k, *self._slice_parameters(k, features, previous))
            likelihoods.update(out["likelihoods"])
            previous.append(out["y_hat"])
        return {"likelihoods": likelihoods, "y_hat": torch.cat(previous, dim=1)}

    def relaxed(self, y: torch.Tensor, z: torch.Tensor, round_fn: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, Any]:
        """``y_hat``, ``z_hat`` and the bits of each image with ``round_fn`` in place of rounding
        (differentiable for a soft ``round_fn``), centred as the coder centres."""
        z_hat = self.hyper.centred(z, round_fn)
        features = self.h_s(z_hat).float()
        bits, previous = self.hyper.bits(z_hat), []
        for k, (latent, y_k) in enumerate(zip(self.latents, self._slices(y))):
            scales, means = self._slice_parameters(k, features, previous)
            y_hat = round_fn(y_k - means) + means
            bits = bits + latent.bits(y_hat, scales, means)
            previous.append(y_hat)
        return {"y_hat": torch.cat(previous, dim=1), "z_hat": z_hat, "bits": bits}

    def compress(self, y: torch.Tensor, *params: torch.Tensor) -> dict[str, Any]:
        """Code ``y``; ``params`` may hold given hyper-latents ``z`` (e.g. refined ones)."""
        z = params[0] if params else self.h_a(y)
        hyper_out = self.hyper.compress(z)
        strings, shapes = dict(hyper_out["strings"]), dict(hyper_out["shapes"])
        y_hats: list[torch.Tensor] = []
        if self.integer is not None:
            features = self.integer.features(hyper_out["symbols"].to(y.device))
            decoded: list[torch.Tensor] = []
            for k, (latent, y_k) in enumerate(zip(self.latents, self._slices(y))):
                indexes, means, fixed_means = self.integer.slice_parameters(k, features, decoded)
                out = latent.compress_indexed(y_k, indexes, means)
                decoded.append(self.integer.fixed_point(out["symbols"], fixed_means))
                y_hats.append(out["y_hat"])
                strings.update(out["strings"])
                shapes.update(out["shapes"])
        else:
            features = self.h_s(hyper_out["y_hat"].to(y.device)).float()
            for k, (latent, y_k) in enumerate(zip(self.latents, self._slices(y))):
                out = latent.compress(y_k, *self._slice_parameters(k, features, y_hats))
                y_hats.append(out["y_hat"])
                strings.update(out["strings"])
                shapes.update(out["shapes"])
        return {"strings": strings, "shapes": shapes, "y_hat": torch.cat(y_hats, dim=1)}

    def decompress(self, strings: Strings, shapes: Shapes, *params: torch.Tensor) -> dict[str, Any]:
        device = next(self.h_s.parameters()).device
        hyper_out = self.hyper.decompress(strings, shapes)
        y_hats: list[torch.Tensor] = []
        if self.integer is not None:
            features = self.integer.features(hyper_out["symbols"].to(device))
            decoded: list[torch.Tensor] = []
            for k, latent in enumerate(self.latents):
                indexes, means, fixed_means = self.integer.slice_parameters(k, features, decoded)
                symbols = latent.decompress_symbols(strings, shapes, indexes).to(device)
                decoded.append(self.integer.fixed_point(symbols, fixed_means))
                y_hats.append(symbols.to(means.dtype) + means)
        else:
            features = self.h_s(hyper_out["y_hat"].to(device)).float()
            for k, latent in enumerate(self.latents):
                y_hats.append(latent.decompress(strings, shapes, *self._slice_parameters(k, features, y_hats))["y_hat"])
        return {"y_hat": torch.cat(y_hats, dim=1)}

    def update(self, force: bool = False) -> bool:
        updated = self.hyper.update(force=force)
        for latent in {id(latent.gaussian_conditional): latent for latent in self.latents}.values():
            updated = latent.update(force=force) or updated
        return updated
