"""Mean-scale hyperprior (Ballé et al. 2018, Minnen et al. 2018) composed of two latent codecs.

::

    y --h_a--> z --[hyper codec: stream "z"]--> z_hat --h_s--> (scales, means)
    y ------------[latent codec, given (scales, means): stream "y"]----------> y_hat

With integer entropy parameters (``integer`` given), ``compress`` and ``decompress`` take the
table indexes and means of ``y`` from an exact integer form of ``h_s`` evaluated on the
decoded symbols of ``z`` (:mod:`codec.latent_codecs.integer_parameters`), so they are the
same on every machine; training (``forward``) always uses the float ``h_s``.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from torch import nn

from codec.band_pool import Prefetcher
from codec.latent_codecs.base import LatentCodec, Shapes, Strings
from codec.latent_codecs.prior_correction import PriorCorrection


class HyperLatentsInBands:
    """``z = h_a(y)`` of one tall image a band of rows at a time, for a latent codec with the
    attributes ``h_a`` (a stack of convolutions and activations) and ``downsampling``."""

    h_a: nn.Module
    downsampling: int

    def hyper_halo(self) -> int | None:
        """Rows of ``y`` beyond a band of ``z`` rows that ``h_a`` reads (a multiple of
        :attr:`downsampling`), or None if ``h_a`` is not a plain stack of convolutions and
        activations."""
        reach, stride = 0, 1
        for layer in self.h_a:
            if isinstance(layer, nn.Conv2d):
                reach += (layer.kernel_size[0] // 2) * stride
                stride *= layer.stride[0]
            elif not isinstance(layer, nn.LeakyReLU | nn.ReLU):
                return None
        return -(-reach // self.downsampling) * self.downsampling

    def hyper_latents_in_bands(self, y_rows: Callable[[int, int], torch.Tensor], height: int, band_rows: int) -> torch.Tensor:
        """``h_a(y)`` of one image whose ``y`` (``height`` rows) is given by ``y_rows(first,
        last)``, asked for consecutive bands of ``band_rows`` rows (a multiple of
        :attr:`downsampling`) plus :meth:`hyper_halo`: the same values, in the memory of a band."""
        d, halo = self.downsampling, self.hyper_halo()
        parts = []
        for start in range(0, height, band_rows):
            stop = min(height, start + band_rows)
            first, last = max(0, start - halo), min(height, stop + halo)
            z = self.h_a(y_rows(first, last))
            parts.append(z[..., (start - first) // d: (start - first) // d + -(-(stop - start) // d), :])
        return torch.cat(parts, dim=-2)


class HyperpriorLatentCodec(HyperLatentsInBands, LatentCodec):
    """``hyper`` codes ``z = h_a(y)``; ``latent`` codes ``y`` with the parameters ``h_s(z_hat)``.

    Streams, in file order: the hyper codec's, then the latent codec's. ``downsampling`` is
    the ratio of ``y``'s to ``z``'s spatial size (two stride-2 layers in ``h_a``: 4).
    """

    def __init__(self, h_a: nn.Module, h_s: nn.Module, hyper: LatentCodec, latent: LatentCodec,
                 downsampling: int = 4,
                 integer: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
                 correction: PriorCorrection | None = None) -> None:
        self.h_a, self.h_s = h_a, h_s
        self.hyper, self.latent = hyper, latent
        self.downsampling = downsampling
        #: Maps the int32 symbols of ``z`` to the exact (table indexes, means) of ``y``; None: float ``h_s``.
        self.integer = integer
        #: The encoder's correction of ``y`` from its predicted parameters
        #: (:mod:`codec.latent_codecs.prior_correction`), or None. Training (:meth:`forward`)
        #: applies it; coding takes ``y`` already corrected (:meth:`corrected`), except
        #: :meth:`compress_in_bands`, which corrects each band as it codes it.
        self.correction = correction

    @property
    def stream_names(self) -> tuple[str, ...]:
        """Names of the streams, in file order."""
        return (self.hyper.name, self.latent.name)

    def hyper_latents(self, y: torch.Tensor) -> torch.Tensor:
        """``z = h_a(y)``, before quantisation."""
        return self.h_a(y)

    def parameters(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scales, means) of ``y`` predicted from the quantised hyper-latents."""
        scales, means = self.h_s(z_hat).chunk(2, dim=1)
        return scales, means

    def latent_shape(self, shapes: Shapes) -> tuple[int, ...]:
        """The per-image shape of ``y`` (C, H, W) of the stream ``shapes`` (empty if missing)."""
        return tuple(shapes.get(self.latent.name, ()))

    def shapes(self, y_shape: tuple[int, ...], hyper_channels: int) -> Shapes:
        """Per-image shapes of every stream for a latent ``y`` of ``y_shape`` (C, H, W)."""
        _, height, width = y_shape
        d = self.downsampling
        return {self.hyper.name: (hyper_channels, -(-height // d), -(-width // d)), self.latent.name: tuple(y_shape)}

    def forward(self, y: torch.Tensor, *params: torch.Tensor) -> dict[str, Any]:
        hyper_out = self.hyper.forward(self.h_a(y).float())
        scales, means = (t.float() for t in self.parameters(hyper_out["y_hat"]))
        if self.correction is not None:
            y = self.correction.from_scales(y, self.latent.gaussian_conditional, scales, means)
        y_out = self.latent.forward(y, scales, means)
        return {"likelihoods": {**y_out["likelihoods"], **hyper_out["likelihoods"]}, "y_hat": y_out["y_hat"]}

    def relaxed(self, y: torch.Tensor, z: torch.Tensor, round_fn: Callable[[torch.Tensor], torch.Tensor],
                z_round_fn: Callable[[torch.Tensor], torch.Tensor] | None = None, correct: bool = False) -> dict[str, Any]:
        """``y_hat``, ``z_hat`` and the bits of each image with ``round_fn`` in place of rounding
        (differentiable for a soft ``round_fn``), centred as the coder centres: z on the
        bottleneck's medians, y on the means predicted from ``z_hat``; ``z_round_fn``, when
        given, replaces ``round_fn`` for ``z``. ``y_hat`` has the reconstruction offsets of
        the rounded latents, if the model has them (:mod:`codec.latent_codecs.reconstruction`);
        ``y_quantised`` is without them. ``correct``: ``y`` is the analysis's, to be corrected
        (:attr:`correction`, if any) as :meth:`forward` does; otherwise it is coded as given."""
        z_hat = self.hyper.centred(z, round_fn if z_round_fn is None else z_round_fn)
        scales, means = self.parameters(z_hat)
        if correct and self.correction is not None:
            y = self.correction.from_scales(y, self.latent.gaussian_conditional, scales, means)
        y_quantised = round_fn(y - means) + means
        bits = self.latent.bits(y_quantised, scales, means) + self.hyper.bits(z_hat)
        return {"y_hat": synthesis_input(self.latent, y_quantised, y, scales, means), "y_quantised": y_quantised,
                "z_hat": z_hat, "bits": bits}

    def corrected(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The ``y`` to code for the analysis's latents ``y`` and hyper-latents ``z``: ``y`` itself,
        or corrected (:attr:`correction`) with the parameters the coder will use, predicted
        from ``z`` rounded (the exact integers with :attr:`integer`)."""
        if self.correction is None:
            return y
        if self.integer is not None:
            return self.correction.from_indexes(y, *self.integer(self.hyper.symbols(z).to(y.device)))
        scales, means = self.parameters(self.hyper.centred(z, torch.round))
        return self.correction.from_scales(y, self.latent.gaussian_conditional, scales, means)

    def compress(self, y: torch.Tensor, *params: torch.Tensor) -> dict[str, Any]:
        """Code ``y``; ``params`` may hold given hyper-latents ``z`` (e.g. refined ones)."""
        z = params[0] if params else self.h_a(y)
        hyper_out = self.hyper.compress(z)
        if self.integer is not None:
            y_out = self.latent.compress_indexed(y, *self.integer(hyper_out["symbols"].to(y.device)))
        else:
            y_out = self.latent.compress(y, *self.parameters(hyper_out["y_hat"].to(y.device)))
        return {"strings": {**hyper_out["strings"], **y_out["strings"]},
                "shapes": {**hyper_out["shapes"], **y_out["shapes"]}, "y_hat": y_out["y_hat"]}

    def decompress(self, strings: Strings, shapes: Shapes, *params: torch.Tensor) -> dict[str, Any]:
        device = next(self.h_s.parameters()).device
        self.latent.check_strings(strings, shapes)  # before the parameters of every latent are computed
        hyper_out = self.hyper.decompress(strings, shapes)
        if self.integer is not None:
            return self.latent.decompress_indexed(strings, shapes, *self.integer(hyper_out["symbols"].to(device)))
        return self.latent.decompress(strings, shapes, *self.parameters(hyper_out["y_hat"].to(device)))

    def compress_in_bands(self, y_rows: Callable[[int, int], torch.Tensor], shape: tuple[int, int, int],
                          band_rows: int, pool: ThreadPoolExecutor | None = None) -> dict[str, Any]:
        """:meth:`compress` of one image whose ``y`` of ``shape`` is given by ``y_rows(first, last)``
        (``[1, C, last - first, W]``, asked for increasing rows, twice: once for ``z``, once to
        code ``y``, which is corrected here, band by band, as :meth:`corrected` corrects the
        whole), with integer parameters, a band of ``band_rows`` rows at a time: the same
        bytes in the memory of a few bands. ``strings`` and ``shapes`` as :meth:`compress`.
        ``pool``: threads that compute the next bands' parameters (:mod:`codec.band_pool`)."""
        if self.integer is None or self.hyper_halo() is None:
            raise ValueError("coding in bands needs integer parameters and a convolutional h_a")
        hyper_out = self.hyper.compress(self.hyper_latents_in_bands(y_rows, shape[1], band_rows))
        symbols_z, quantize = hyper_out["symbols"], self.latent.gaussian_conditional.quantize
        parameters = Prefetcher(lambda start, stop: self.integer.rows(symbols_z, start, stop), shape[1], band_rows, pool)

        def band(start: int, stop: int) -> tuple:
            indexes, means = parameters(start, stop)
            y = y_rows(start, stop)
            if self.correction is not None:
                y = self.correction.from_indexes(y, indexes, means)
            symbols = quantize(y, "symbols", means.to(symbols_z.device))
            return symbols[0].cpu().numpy(), indexes[0].cpu().numpy()

        strings = self.latent.compress_in_bands(shape, band_rows, band)
        return {"strings": {**hyper_out["strings"], self.latent.name: [strings]},
                "shapes": {**hyper_out["shapes"], self.latent.name: tuple(shape)}}

    def decompress_in_bands(self, strings: Strings, shapes: Shapes, band_rows: int,
                            pool: ThreadPoolExecutor | None = None):
        """The ``y_hat`` of one image as a :class:`~codec.latent_codecs.row_bands.BandedDecoder`
        (integer parameters): decoded a band of ``band_rows`` rows at a time, as asked for;
        ``pool``: threads that compute the next bands' parameters (:mod:`codec.band_pool`)."""
        if self.integer is None:
            raise ValueError("decoding in bands needs integer parameters")
        self.latent.check_strings(strings, shapes)
        symbols_z = self.hyper.decompress(strings, shapes)["symbols"]

        def parameters(start: int, stop: int) -> tuple:
            indexes, means = self.integer.rows(symbols_z, start, stop)
            return indexes[0].cpu().numpy(), means[0].cpu().numpy()

        rows = self.latent_shape(shapes)[1]
        return self.latent.decoder_in_bands(strings, shapes, band_rows, Prefetcher(parameters, rows, band_rows, pool))

    def update(self, force: bool = False) -> bool:
        updated = self.hyper.update(force=force)
        return self.latent.update(force=force) or updated


def synthesis_input(latent: LatentCodec, y_quantised: torch.Tensor, y: torch.Tensor,
                    scales: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """What the synthesis sees of relaxed latents ``y_quantised`` (of ``y`` under ``scales``,
    ``means``): themselves, plus the reconstruction offsets of ``round(y - means)`` when
    ``latent`` has them (constant in ``y``: the soft rounding's gradient passes unchanged)."""
    offsets = getattr(latent, "reconstruction", None)
    if offsets is None:
        return y_quantised
    return y_quantised + offsets.of_scales(torch.round(y - means).detach(), scales)
