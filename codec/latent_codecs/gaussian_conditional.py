"""Conditional Gaussian: compressai's ``GaussianConditional`` as a latent codec, given scales and means.

Each image's latent is coded as the independent substreams of the format's split rule
(:func:`codec.entropy.substreams.latent_bounds`: whole rows, from the shape alone), on
several threads of the coder backend; a latent of fewer than ``2 * SUBSTREAM_SYMBOLS``
values is one substream, byte-identical to a single stream. The decoder accepts exactly that
split, except inside :func:`version_1_streams`: version 1 files coded ``y`` as one stream
whatever its size.
"""
from __future__ import annotations

import contextvars
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from codec.entropy import DEFAULT_CODER, entropy_tables, get_coder  # first: imports compressai lean
from codec.entropy.compressai_models import scale_indexes
from codec.entropy.substreams import latent_bounds
from compressai.entropy_models import GaussianConditional  # noqa: I001
from codec.latent_codecs.base import LatentCodec, Shapes, Strings, check_shape
from codec.latent_codecs.row_bands import BandedDecoder, BandedEncoder, BandFunction, encode_in_bands

if TYPE_CHECKING:
    from codec.latent_codecs.reconstruction import ReconstructionOffsets


_single_streams = contextvars.ContextVar("single_streams", default=False)


@contextmanager
def version_1_streams() -> Iterator[None]:
    """Decode, in this context, every image's stream as one substream whatever its shape, as
    version 1 files wrote it (docs/bitstream.md, "Version 1"); outside it only the split of
    the format's rule is accepted."""
    token = _single_streams.set(True)
    try:
        yield
    finally:
        _single_streams.reset(token)


def scale_table() -> torch.Tensor:
    """The 64 scales of the Gaussian CDF tables: compressai's ``get_scale_table()``.

    Written here because ``compressai.models`` imports all of compressai (seconds); a test
    checks the two are equal.
    """
    return torch.exp(torch.linspace(math.log(0.11), math.log(256), 64))


class GaussianConditionalLatentCodec(LatentCodec):
    """Codes ``y`` under N(means, scales), quantised around the means, as stream ``name``,
    with the coder backend named ``coder``. ``compress``/``decompress`` take float
    ``(scales, means)``; ``compress_indexed``/``decompress_indexed`` take the table index of
    every latent instead of its scale (integer entropy parameters). Every image's stream is
    the substreams of :func:`~codec.entropy.substreams.latent_bounds`, coded on ``threads``
    threads (None: the backend's choice); the bytes do not depend on ``threads``."""

    def __init__(self, gaussian_conditional: GaussianConditional, name: str = "y", coder: str = DEFAULT_CODER,
                 threads: int | None = None, reconstruction: ReconstructionOffsets | None = None) -> None:
        self.gaussian_conditional = gaussian_conditional
        self.name = name
        self.coder = coder
        self.threads = threads
        #: The model's reconstruction offsets (:mod:`codec.latent_codecs.reconstruction`), or
        #: None: ``y_hat`` is ``means + symbols``, the bin centres.
        self.reconstruction = reconstruction

    def forward(self, y: torch.Tensor, *params: torch.Tensor) -> dict[str, Any]:
        """Likelihoods with additive noise; ``y_hat`` rounded around the means (straight-through
        gradient) plus the reconstruction offsets, as the synthesis sees it at test time, and
        ``y_quantised`` without the offsets, as a context model sees it."""
        scales, means = params
        with torch.autocast(y.device.type, enabled=False):
            _, likelihoods = self.gaussian_conditional(y, scales, means=means)
        symbols = torch.round(y - means).detach()
        y_quantised = y + (symbols + means - y).detach()
        y_hat = y_quantised + self.reconstruction.of_scales(symbols, scales) if self.reconstruction is not None else y_quantised
        return {"likelihoods": {self.name: likelihoods}, "y_hat": y_hat, "y_quantised": y_quantised}

    def reconstruct(self, symbols: torch.Tensor, indexes: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """``y_hat`` of integer symbols: ``symbols + means`` (float, on the means' device), plus
        the reconstruction offsets of their table indexes when the model has them."""
        return self._with_offsets(symbols.to(means.device, means.dtype) + means, symbols, indexes)

    def _with_offsets(self, y_quantised: torch.Tensor, symbols: torch.Tensor, indexes: torch.Tensor) -> torch.Tensor:
        """``y_quantised`` (``symbols + means``) plus the reconstruction offsets, if any."""
        if self.reconstruction is None:
            return y_quantised
        device = y_quantised.device
        return y_quantised + self.reconstruction.of(symbols.to(device), indexes.to(device)).to(y_quantised.dtype)

    def compress(self, y: torch.Tensor, *params: torch.Tensor) -> dict[str, Any]:
        scales, means = params
        return self.compress_indexed(y, scale_indexes(self.gaussian_conditional, scales), means)

    def compress_indexed(self, y: torch.Tensor, indexes: torch.Tensor, means: torch.Tensor) -> dict[str, Any]:
        """:meth:`compress` with the table index of every latent given; also returns the coded
        int32 ``symbols`` (``y_hat`` less the means)."""
        backend, tables = get_coder(self.coder), entropy_tables(self.gaussian_conditional)
        shape = tuple(y.shape[1:])
        bounds = latent_bounds(shape)
        symbols = self.gaussian_conditional.quantize(y, "symbols", means)
        strings = [backend.encode_substreams(s, i, tables, bounds, self.threads)
                   for s, i in zip(_per_image(symbols), _per_image(indexes))]
        y_quantised = self.gaussian_conditional.quantize(y, "dequantize", means)
        return {"strings": {self.name: strings}, "shapes": {self.name: shape},
                "y_hat": self._with_offsets(y_quantised, symbols, indexes), "y_quantised": y_quantised, "symbols": symbols}

    def decompress(self, strings: Strings, shapes: Shapes, *params: torch.Tensor) -> dict[str, Any]:
        scales, means = params
        return self.decompress_indexed(strings, shapes, scale_indexes(self.gaussian_conditional, scales), means)

    def decompress_indexed(self, strings: Strings, shapes: Shapes, indexes: torch.Tensor,
                           means: torch.Tensor) -> dict[str, Any]:
        """:meth:`decompress` with the table index of every latent given: ``y_hat`` (with the
        reconstruction offsets) and ``y_quantised`` (``means + symbols``)."""
        symbols = self.decompress_symbols(strings, shapes, indexes)
        y_quantised = symbols.to(means.device, means.dtype) + means
        return {"y_hat": self._with_offsets(y_quantised, symbols, indexes), "y_quantised": y_quantised}

    def decompress_symbols(self, strings: Strings, shapes: Shapes, indexes: torch.Tensor) -> torch.Tensor:
        """The int32 symbols (``y_hat`` less the means, on the CPU) of every latent, decoded with
        the given table indexes; ValueError if the streams do not match them."""
        shape = check_shape(shapes, self.name, indexes.dim() - 1)
        if shape != tuple(indexes.shape[1:]):
            raise ValueError(f"stream {self.name!r} has shape {shapes[self.name]}, its parameters {tuple(indexes.shape[1:])}")
        bounds = self.check_strings(strings, shapes)
        images = strings[self.name]
        if len(images) != indexes.shape[0]:
            raise ValueError(f"stream {self.name!r} has {len(images)} images, its parameters {indexes.shape[0]}")
        backend, tables = get_coder(self.coder), entropy_tables(self.gaussian_conditional)
        symbols = np.stack([backend.decode_substreams(substreams, i, tables, bounds, self.threads)
                            for substreams, i in zip(images, _per_image(indexes))])
        return torch.from_numpy(symbols).reshape(indexes.shape)

    def bits(self, y_hat: torch.Tensor, scales: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """Bits of (possibly soft) quantised latents under N(means, scales), per image
        (differentiable): compressai's likelihood with its lower bounds on the scale and the
        likelihood, in one pass (:class:`GaussianBits`)."""
        conditional = self.gaussian_conditional
        return GaussianBits.apply(y_hat, scales, means, float(conditional.lower_bound_scale.bound),
                                  float(conditional.likelihood_lower_bound.bound), torch.is_grad_enabled())

    def compress_in_bands(self, shape: tuple[int, int, int], band_rows: int, band: BandFunction) -> list[bytes]:
        """One image's substreams, its int32 symbols and table indexes given by ``band(start,
        stop)`` for consecutive bands of ``band_rows`` rows (:func:`~codec.latent_codecs.row_bands.encode_in_bands`):
        the bytes of :meth:`compress_indexed`, in the memory of a few bands."""
        return encode_in_bands(shape, latent_bounds(shape), band_rows, band, self._encode_substreams())

    def encoder_in_bands(self, shape: tuple[int, int, int]) -> BandedEncoder:
        """A :class:`~codec.latent_codecs.row_bands.BandedEncoder` of one image's stream of ``y``
        of ``shape``, fed bands of rows by the caller: the bytes of :meth:`compress_indexed`."""
        return BandedEncoder(shape, latent_bounds(shape), self._encode_substreams())

    def _encode_substreams(self):
        backend, tables = get_coder(self.coder), entropy_tables(self.gaussian_conditional)
        return lambda s, i, b: backend.encode_substreams(s, i, tables, b, self.threads)

    def decoder_in_bands(self, strings: Strings, shapes: Shapes, band_rows: int, parameters: BandFunction,
                         y_hat_of: Callable[..., np.ndarray] | None = None) -> BandedDecoder:
        """A :class:`~codec.latent_codecs.row_bands.BandedDecoder` of one image's stream, the
        table indexes and means of a band of rows given by ``parameters(start, stop)`` (with
        ``y_hat_of``: the indexes and the arrays kept with the decoded symbols, ``y_hat`` made
        from them). Without ``y_hat_of``, ``y_hat`` has the reconstruction offsets, if any;
        with it, ``y_hat_of`` adds them."""
        bounds = self.check_strings(strings, shapes)
        shape = check_shape(shapes, self.name, 3)
        if len(strings[self.name]) != 1:
            raise ValueError(f"stream {self.name!r}: one image at a time, got {len(strings[self.name])}")
        backend, tables = get_coder(self.coder), entropy_tables(self.gaussian_conditional)
        offsets = self.reconstruction.of_numpy if self.reconstruction is not None and y_hat_of is None else None
        return BandedDecoder(shape, bounds, strings[self.name][0], band_rows, parameters,
                             lambda s, i, b: backend.decode_substreams(s, i, tables, b, self.threads), y_hat_of,
                             offsets)

    def check_strings(self, strings: Strings, shapes: Shapes) -> np.ndarray:
        """The substream bounds of one image's stream; ValueError unless every image has exactly
        the substreams of the format's split rule (checked before any parameter is computed)."""
        if self.name not in strings:
            raise ValueError(f"stream {self.name!r} is missing")
        shape = tuple(int(n) for n in shapes.get(self.name, ()))
        if not shape or min(shape) < 1:
            raise ValueError(f"stream {self.name!r} needs a shape of positive sizes, got {shape}")
        bounds = np.array([0, math.prod(shape)]) if _single_streams.get() else latent_bounds(shape)
        for substreams in strings[self.name]:
            if len(substreams) != len(bounds) - 1:
                raise ValueError(f"stream {self.name!r} of shape {shape} must be {len(bounds) - 1} substreams "
                                 f"(the format's split rule), got {len(substreams)}")
        return bounds

    def update(self, force: bool = False) -> bool:
        updated = self.gaussian_conditional.update_scale_table(scale_table(), force=force)
        entropy_tables(self.gaussian_conditional)  # converted and validated now, once
        return updated


def _per_image(values: torch.Tensor) -> np.ndarray:
    """``values`` [B, ...] as a C-contiguous int32 array [B, n]: one row per image, in element order."""
    return np.ascontiguousarray(values.to(torch.int32).cpu().numpy().reshape(values.shape[0], -1))


class GaussianBits(torch.autograd.Function):
    """Per-image bits ``-sum log2 P(y_hat)`` of latents under ``N(means, max(scales, scale_bound))``
    integrated over each unit bin, the likelihood held above ``likelihood_bound``: the value
    of compressai's ``GaussianConditional._likelihood`` and ``likelihood_lower_bound`` (the same
    operations in the same order), with the gradient, compressai's ``LowerBound`` rule
    included, computed in the forward pass from the density at the bin's edges, so the
    backward pass is one product per input instead of autograd's walk back through a dozen
    element-wise steps (latent refinement runs this hundreds of times per image). ``with_grad``:
    the caller's grad mode (a forward pass always runs without one), so that a pass under
    ``torch.no_grad`` computes no derivatives."""

    @staticmethod
    def forward(ctx, y_hat: torch.Tensor, scales: torch.Tensor, means: torch.Tensor, scale_bound: float,
                likelihood_bound: float, with_grad: bool = True) -> torch.Tensor:
        difference = y_hat - means
        values = difference.abs()
        bounded = torch.clamp_min(scales, scale_bound)
        upper_edge = (0.5 - values) / bounded
        lower_edge = (-0.5 - values) / bounded
        c = -(2**-0.5)
        likelihood = 0.5 * torch.erfc(c * upper_edge) - 0.5 * torch.erfc(c * lower_edge)
        held = torch.clamp_min(likelihood, likelihood_bound)
        bits = -held.log2().flatten(1).sum(1)
        if with_grad and any(ctx.needs_input_grad[:3]):
            # d bits / d likelihood, d likelihood / d values and / d the bounded scale.
            per_likelihood = -1 / (held * math.log(2))
            density_upper = torch.exp(-0.5 * upper_edge.square()) * (2 * math.pi) ** -0.5
            density_lower = torch.exp(-0.5 * lower_edge.square()) * (2 * math.pi) ** -0.5
            # LowerBound: a gradient reaches the likelihood where it is above its bound or the
            # gradient would raise it (always, for bits: per_likelihood < 0).
            per_likelihood = per_likelihood * ((likelihood >= likelihood_bound) | (per_likelihood < 0))
            per_value = per_likelihood * (density_lower - density_upper) / bounded
            per_scale = per_likelihood * (lower_edge * density_lower - upper_edge * density_upper) / bounded
            per_y = per_value * torch.sign(difference)
            ctx.save_for_backward(per_y, per_scale, scales)
            ctx.scale_bound = scale_bound
        return bits

    @staticmethod
    def backward(ctx, grad_bits: torch.Tensor):
        per_y, per_scale, scales = ctx.saved_tensors
        grad = grad_bits.view(-1, *([1] * (per_y.dim() - 1)))
        grad_y = per_y * grad
        grad_scale = per_scale * grad
        grad_scale = grad_scale * ((scales >= ctx.scale_bound) | (grad_scale < 0))  # LowerBound on the scale
        return grad_y, grad_scale, -grad_y, None, None, None
