"""WaLLoC-style wavelet-sandwiched autoencoder with a mean-scale hyperprior.

Image -> wavelet packet analysis (J levels, 3 * 4**J channels at 1/2**J resolution) -> a
linear 1x1 encoder to C latent channels -> entropy coding -> a decoder of residual
convolution blocks at latent resolution -> wavelet packet synthesis. The encoder is a
single linear map per 2**J x 2**J block (cheap, as on a sensor or phone), the decoder
carries the non-linearity. Optionally (``encoder_channels`` > 0) a small residual body of
3x3 convolutions adds a correction to the linear encoder's latents from each block's
neighbourhood: a nearly linear encoder that narrows the gap to latents refined per image.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from codec.band_pool import band_pool, band_threads, in_order, submit
from codec.entropy import DEFAULT_CODER
from codec.latent_codecs import Shapes, Strings
from codec.memory import band_trimmer
from codec.models.base import DEFAULT_LAMBDAS, PixelRows, VariableRateModel
from codec.tiling import tile_pixels
from codec.transforms import WaveletPacket2D


class ResidualBlock(nn.Module):
    """conv3x3 -> LeakyReLU -> conv3x3, added to the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return x + self.body(x)
        return self.body(x).add_(x)  # the same sum, without a third tensor of the band's size


class WaveletDecoder(nn.Module):
    """Latents -> wavelet coefficients: a linear path plus a residual-block path."""

    def __init__(self, latent_channels: int, coefficient_channels: int, channels: int, blocks: int) -> None:
        super().__init__()
        self.linear = nn.Conv2d(latent_channels, coefficient_channels, 1)
        self.body = nn.Sequential(
            nn.Conv2d(latent_channels, channels, 3, padding=1),
            nn.LeakyReLU(0.1, inplace=True),
            *[ResidualBlock(channels) for _ in range(blocks)],
            nn.Conv2d(channels, coefficient_channels, 1),
        )

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return self.linear(y) + self.body(y)
        # The same sum (float addition commutes), the body's activations freed before the
        # linear path's output is made, and no third tensor of the coefficients' size.
        return self.body(y).add_(self.linear(y))


class WaLLoC(VariableRateModel):
    """Wavelet packet -> (nearly) linear encoder -> hyperprior -> residual decoder -> inverse WPT."""

    integer_parameters = True

    def __init__(
        self,
        latent_channels: int = 24,
        levels: int = 3,
        wavelet: str = "bior4.4",
        decoder_channels: int = 96,
        decoder_blocks: int = 3,
        hyper_channels: int = 64,
        z_channels: int = 32,
        lambdas: tuple[float, ...] = DEFAULT_LAMBDAS,
        boundary: str = "periodic",
        reconstruction_offsets: bool = False,
        encoder_channels: int = 0,
        encoder_blocks: int = 1,
        prior_correction: int = 0,
    ) -> None:
        super().__init__(latent_channels, z_channels, lambdas, reconstruction_offsets, prior_correction)
        if encoder_channels and boundary != "symmetric":
            raise ValueError("an encoder body (encoder_channels > 0) needs symmetric wavelet borders")
        self.name = "walloc"
        self.wpt = WaveletPacket2D(wavelet, levels, boundary)
        coefficients = 3 * 4**levels
        self.pad_multiple = self.wpt.factor * 4  # two stride-2 hyper layers below y
        self.encoder = nn.Conv2d(coefficients, latent_channels, 1)
        act = lambda: nn.LeakyReLU(0.1, inplace=True)  # noqa: E731
        #: The encoder's optional non-linear correction (None: a linear encoder). Its output
        #: convolution starts at zero, so a body added to trained weights changes nothing yet.
        self.encoder_body = nn.Sequential(
            nn.Conv2d(coefficients, encoder_channels, 3, padding=1), act(),
            *[ResidualBlock(encoder_channels) for _ in range(encoder_blocks)],
            nn.Conv2d(encoder_channels, latent_channels, 1),
        ) if encoder_channels else None
        if self.encoder_body is not None:
            nn.init.zeros_(self.encoder_body[-1].weight)
            nn.init.zeros_(self.encoder_body[-1].bias)
        self.decoder = WaveletDecoder(latent_channels, coefficients, decoder_channels, decoder_blocks)
        self.h_a = nn.Sequential(
            nn.Conv2d(latent_channels, hyper_channels, 3, padding=1), act(),
            nn.Conv2d(hyper_channels, hyper_channels, 5, stride=2, padding=2), act(),
            nn.Conv2d(hyper_channels, z_channels, 5, stride=2, padding=2),
        )
        self.h_s = nn.Sequential(
            nn.ConvTranspose2d(z_channels, hyper_channels, 5, stride=2, padding=2, output_padding=1), act(),
            nn.ConvTranspose2d(hyper_channels, hyper_channels, 5, stride=2, padding=2, output_padding=1), act(),
            nn.Conv2d(hyper_channels, 2 * latent_channels, 3, padding=1),
        )

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, scale: float = 10.0) -> None:
        """Start from the KLT: the encoder projects onto the top principal components of the
        wavelet coefficients of ``x`` (scaled by ``scale``), the decoder's linear path inverts
        that projection and its residual path starts at zero. Training then begins from a
        good linear transform code instead of from noise."""
        coefficients = self.wpt.analysis(x - 0.5)
        flat = coefficients.permute(0, 2, 3, 1).reshape(-1, coefficients.shape[1]).double()
        mean = flat.mean(0)
        covariance = torch.cov((flat - mean).T)
        _, vectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
        basis = vectors[:, -self.latent_channels:].flip(1).T.float()  # [C, coefficients]
        mean = mean.float()
        self.encoder.weight.copy_((scale * basis)[:, :, None, None])
        self.encoder.bias.copy_(-scale * basis @ mean)
        self.decoder.linear.weight.copy_((basis.T / scale)[:, :, None, None])
        self.decoder.linear.bias.copy_(mean)
        last = self.decoder.body[-1]
        last.weight.zero_()
        last.bias.zero_()

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """Wavelet coefficients of an image: what the encoder sees and the decoder rebuilds."""
        return self.wpt.analysis(x - 0.5)

    def _encode(self, coefficients: torch.Tensor) -> torch.Tensor:
        """Wavelet coefficients -> latents: the linear encoder, plus the body's correction."""
        if self.encoder_body is None:
            return self.encoder(coefficients)
        if torch.is_grad_enabled():
            return self.encoder(coefficients) + self.encoder_body(coefficients)
        return self.encoder_body(coefficients).add_(self.encoder(coefficients))  # the same sum, one tensor fewer

    def g_a(self, x: torch.Tensor) -> torch.Tensor:
        """Image -> latents. Without gradients, an image larger than :meth:`_taken_whole` is
        analysed in tiles (:meth:`_analysis_band`), as :meth:`g_s` synthesises."""
        rows, cols = x.shape[-2] // self.wpt.factor, x.shape[-1] // self.wpt.factor
        band, columns = self.tile()
        if torch.is_grad_enabled() or self._taken_whole(rows, cols, self.analysis_halo):
            return self._encode(self.coefficients(x))
        out = x.new_empty(x.shape[0], self.encoder.out_channels, rows, x.shape[-1] // self.wpt.factor)
        pixels = lambda index, first, stop: x[..., first:stop].index_select(-2, index.to(x.device))  # noqa: E731
        for start in range(0, rows, band):
            stop = min(rows, start + band)
            out[..., start:stop, :] = self._analysis_band(pixels, x.shape[-2], x.shape[-1], start, stop, columns)
        return out

    def _analysis_band(self, pixels: PixelRows, height: int, width: int, start: int, stop: int,
                       columns: int) -> torch.Tensor:
        """Latent rows ``start:stop`` of an image of ``height`` pixel rows and ``width`` pixel
        columns, ``pixels(index, first, stop)`` giving columns ``first:stop`` of the pixel rows
        of an index tensor: they need only the pixel rows within the reach of the wavelet
        analysis filters and the encoder body (wrapping around under periodic borders), and
        tiles of ``columns`` latent columns only the pixel columns within that reach
        (:meth:`_in_column_tiles`), read a tile at a time."""
        f, halo, rows = self.wpt.factor, self.analysis_halo, height // self.wpt.factor
        if self.wpt.boundary == "periodic":
            first, last = start - halo, stop + halo
            index = torch.arange(first * f, last * f) % height
        else:
            first, last = max(0, start - halo), min(rows, stop + halo)
            index = torch.arange(first * f, last * f)

        def tile(a: int, b: int) -> torch.Tensor:
            centred = pixels(index, a * f, b * f)
            centred -= 0.5
            return self._encode(self.wpt.analysis(centred))[..., start - first: stop - first, :]
        return self._in_column_tiles(tile, width // f, halo, columns, 1)

    def _in_column_tiles(self, compute: Callable[[int, int], torch.Tensor], cols: int, halo: int, columns: int,
                         scale: int) -> torch.Tensor:
        """``compute(0, cols)`` (outputs ``scale`` columns per latent column), as tiles of
        ``columns`` latent columns, each ``compute(a, b)`` of its columns plus ``halo`` on either
        side (within the image) and cut to its own: under symmetric borders a cut edge acts
        as the image's own edge only within the halo, so every tile's columns are the whole
        computation's; the activations held are those of one tile. Periodic borders (which
        wrap around) and images of fewer columns than a tile and its halos are computed whole."""
        if self.wpt.boundary != "symmetric" or cols <= columns + 2 * halo:
            return compute(0, cols)
        out = None
        for c0 in range(0, cols, columns):
            c1 = min(cols, c0 + columns)
            a, b = max(0, c0 - halo), min(cols, c1 + halo)
            part = compute(a, b)
            if out is None:
                out = part.new_empty(*part.shape[:-1], cols * scale)
            out[..., c0 * scale:c1 * scale] = part[..., (c0 - a) * scale:(c1 - a) * scale]
            del part
        return out

    @property
    def analysis_halo(self) -> int:
        """Latent rows beyond a band whose pixels its latents depend on (the wavelet analysis
        filters reach ``pad`` samples of each level's input, 2**level pixels each; the encoder
        body's 3x3 convolutions one latent row each)."""
        reach = 2 * max(self.wpt.pad_before, self.wpt.pad_after)
        wavelet = math.ceil(sum(reach * 2**level for level in range(self.wpt.levels)) / self.wpt.factor)
        body = 0 if self.encoder_body is None else \
            sum(1 for m in self.encoder_body.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))
        return wavelet + body

    def g_s(self, y: torch.Tensor) -> torch.Tensor:
        """Latents -> image. Without gradients, an image larger than :meth:`_taken_whole` is
        synthesised in tiles (:meth:`_band`): the memory of the intermediate activations is
        then that of a tile, and the result is the whole-image computation's up to float
        rounding (the same arithmetic on other tensor shapes)."""
        rows, cols = y.shape[-2:]
        band, columns = self.tile()
        if torch.is_grad_enabled() or self._taken_whole(rows, cols, sum(self.synthesis_halo)):
            return self._synthesise(y)
        f = self.wpt.factor
        out = y.new_empty(y.shape[0], 3, rows * f, cols * f)
        for start in range(0, rows, band):
            stop = min(rows, start + band)
            out[..., start * f: stop * f, :] = self._band(lambda a, b: y[..., a:b, :], rows, start, stop, columns)
        return out

    #: Latent rows per band of the entropy parameters and substreams of :meth:`compress_image`
    #: and :meth:`decompress_image`, and of ``h_a``'s bands (the results do not depend on it).
    CODING_ROWS = 64

    #: Latents a channel of one coding band at most (None: no limit): on images wider than
    #: ``CODING_LATENTS / CODING_ROWS`` latents, coding bands of fewer rows (:meth:`_coding_rows`).
    #: None for walloc, whose bands' parameters are small: fewer rows only cost it time.
    CODING_LATENTS: int | None = None

    def _coding_rows(self, cols: int) -> int:
        """Rows per coding band of an image ``cols`` latents wide: :attr:`CODING_ROWS`, or
        fewer (a multiple of 8, what the entropy models' bands need) to keep a band within
        :attr:`CODING_LATENTS` latents a channel."""
        if self.CODING_LATENTS is None:
            return self.CODING_ROWS
        return min(self.CODING_ROWS, max(8, self.CODING_LATENTS // max(1, cols) // 8 * 8))

    def _codes_in_bands(self, rows: int, cols: int, integer: bool | None) -> bool:
        """Whether :meth:`compress_image` / :meth:`decompress_image` work in bands for ``rows``
        latent rows: with integer parameters, symmetric borders and an entropy model that codes
        in bands (``compress_in_bands`` / ``decompress_in_bands``: the mean-scale hyperprior,
        walloc-cc's context model), for images larger than :meth:`_taken_whole`."""
        integer = self.integer_parameters if integer is None else integer
        halo = max(self.analysis_halo, sum(self.synthesis_halo))
        if not integer or self.wpt.boundary != "symmetric" or self._taken_whole(rows, cols, halo):
            return False
        return hasattr(self.build_latent_codec(integer=False), "compress_in_bands")

    @torch.inference_mode()
    def compress_image(self, pixels: PixelRows, height: int, width: int, quality: float, coder: str = DEFAULT_CODER,
                       integer: bool | None = None) -> dict[str, Any]:
        """:meth:`compress`, a band of rows at a time on tall images (:meth:`_codes_in_bands`):
        ``y`` is analysed in the bands of :meth:`g_a` (twice: for ``z``, then to code it), the
        entropy parameters and substreams follow a band of :attr:`CODING_ROWS` rows at a time;
        the same bytes in the memory of a few bands."""
        f = self.wpt.factor
        if not self._codes_in_bands(height // f, width // f, integer):
            return super().compress_image(pixels, height, width, quality, coder, integer)
        gain, rows, (band, columns) = self.gains.gain(quality), height // f, self.tile()
        trim = band_trimmer(self.HEAP_MMAP_THRESHOLD)

        def analyse(k: int) -> torch.Tensor:
            return self._analysis_band(pixels, height, width, k * band, min(rows, (k + 1) * band), columns) * gain

        codec = self.build_latent_codec(coder, True)
        with band_pool() as pool:
            analysed: dict[int, Future] = {}  # g_a's bands of y around the rows last asked for, and the next ones
            ahead = band_threads() if pool is not None else 0

            def y_rows(first: int, last: int) -> torch.Tensor:
                trim()  # what the bands before freed (codec.memory)
                needed = range(first // band, (last - 1) // band + 1)
                wanted = range(needed.start, min((rows - 1) // band, needed.stop - 1 + ahead) + 1)
                for k in [k for k in analysed if k not in wanted]:
                    analysed.pop(k).cancel()
                for k in wanted:
                    if k not in analysed:
                        analysed[k] = submit(pool, analyse, k)
                parts = [analysed[k].result()[..., max(first, k * band) - k * band: min(last, (k + 1) * band) - k * band, :]
                         for k in needed]
                return torch.cat(parts, dim=-2) if len(parts) > 1 else parts[0]

            return codec.compress_in_bands(y_rows, (self.latent_channels, rows, width // f),
                                           self._coding_rows(width // f), pool)

    @torch.inference_mode()
    def decompress_image(self, strings: Strings, shapes: Shapes, quality: float, write: Callable[[int, torch.Tensor], None],
                         coder: str = DEFAULT_CODER, integer: bool | None = None) -> None:
        """:meth:`decompress`, a band of rows at a time on tall images (:meth:`_codes_in_bands`):
        the substreams of ``y`` are decoded as the bands of :meth:`g_s` need them, and each
        band's pixels are handed to ``write`` and forgotten; the same pixels."""
        self._check_streams(strings)
        codec = self.build_latent_codec(coder, integer)
        shape = codec.latent_shape(shapes) if hasattr(codec, "decompress_in_bands") else ()
        if len(shape) != 3 or len(next(iter(strings.values()))) != 1 or not self._codes_in_bands(shape[1], shape[2], integer):
            return super().decompress_image(strings, shapes, quality, write, coder, integer)
        inverse, device = self.gains.inverse_gain(quality), self.gains.log_gain.device
        trim = band_trimmer(self.HEAP_MMAP_THRESHOLD)
        rows, f, halo = shape[1], self.wpt.factor, sum(self.synthesis_halo)

        band, columns = self.tile()

        def synthesise(y: torch.Tensor, first: int, start: int, stop: int) -> torch.Tensor:  # y: rows first:...
            return self._band(lambda a, b: y[..., a - first:b - first, :], rows, start, stop, columns)

        starts = range(0, rows, band)
        with band_pool() as pool:
            latents = codec.decompress_in_bands(strings, shapes, self._coding_rows(shape[2]), pool)

            def bands() -> Iterator[tuple[torch.Tensor, int, int, int]]:  # the latents decoded here
                for start in starts:
                    stop, first = min(rows, start + band), max(0, start - halo)
                    y = latents.rows(first, min(rows, stop + halo)).to(device) * inverse
                    latents.release(stop - halo)
                    trim()  # what decoding the latents freed (codec.memory)
                    yield y, first, start, stop

            # The pixels on the pool, one band fewer submitted ahead than threads: this thread
            # decodes the next band's latents meanwhile, so two threads keep two cores busy with
            # one; at 100 MP 0.08 GB less memory for 4 % more time (docs/large-images.md).
            for start, pixels in zip(starts, in_order(pool, synthesise, bands(), band_threads() - 1)):
                write(start * f, pixels)
                del pixels
                trim()  # what the band freed (codec.memory)

    #: Images of at most this many latent rows and columns (1,200 x 2,048 pixels: all of
    #: Kodak, full HD) are analysed, synthesised and coded whole, as before bands existed:
    #: faster on small images, and their files and pixels unchanged. Wider ones, however
    #: short, are tiled (a 20000 x 1100 image took 1.6 GB whole).
    WHOLE_IMAGE_ROWS, WHOLE_IMAGE_COLUMNS = 150, 256

    def _taken_whole(self, rows: int, cols: int, halo: int) -> bool:
        """Whether an image of ``rows`` x ``cols`` latents is taken whole by a tiled transform
        of ``halo`` latents: within :attr:`WHOLE_IMAGE_ROWS` x :attr:`WHOLE_IMAGE_COLUMNS`, or
        within one tile and its halos (:meth:`tile`)."""
        band, columns = self.tile()
        return (rows <= max(self.WHOLE_IMAGE_ROWS, band + 2 * halo)
                and cols <= max(self.WHOLE_IMAGE_COLUMNS, columns + 2 * halo))

    #: Latent rows and columns of the tiles of :meth:`g_a` and :meth:`g_s` on large images
    #: (512 x 1024 pixels) unless :func:`codec.tiling.tiles_of` sets others (``--tile``): the
    #: same pixels and bytes whatever the tiles (docs/large-images.md, "Tiles"). The halos
    #: cost about a third more decoder work than the tiles alone, and save the memory of
    #: whole rows: with bands on two threads (:mod:`codec.band_pool`), two tiles' activations.
    BAND_ROWS, TILE_COLUMNS = 64, 128

    #: Blocks of at least this many bytes are mapped on their own while an image is coded in
    #: bands (:func:`codec.memory.bound_heap`). 2 MB rather than the default 4 MB: with the
    #: encoder body, the 20000 x 1100 panorama's two-thread encode peaks at 0.79 GB instead of
    #: 0.81-0.82 GB (bound 0.80 GB), 24 MP at 0.66 instead of 0.71 GB, for about 5-15 % more
    #: encode time (docs/large-images.md, "Tiles").
    HEAP_MMAP_THRESHOLD = 2 << 20

    def tile(self) -> tuple[int, int]:
        """(rows, columns) of latents per tile: :func:`codec.tiling.tile_pixels` in latents
        (at least one), else :attr:`BAND_ROWS` x :attr:`TILE_COLUMNS`. Read once per image in
        the caller's thread (band threads do not see its context)."""
        pixels = tile_pixels()
        if pixels is None:
            return self.BAND_ROWS, self.TILE_COLUMNS
        return tuple(max(1, n // self.wpt.factor) for n in pixels)  # type: ignore[return-value]

    def _synthesise(self, y: torch.Tensor) -> torch.Tensor:
        return self.wpt.synthesis(self.decoder(y)) + 0.5

    def linearised_distortion(self, y: torch.Tensor, x: torch.Tensor
                              ) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
        """``g_s(y)`` (whole image) and a cheap stand-in, near ``y``, for the per-image mean
        squared error of ``g_s`` against the image ``x``, for latent refinement
        (:mod:`codec.encoding.refine`): the decoder's linear path exactly, its residual body
        held at its output for ``y`` (a small correction to the linear path), and the error
        measured on the wavelet coefficients, each sub-band weighted by the energy of its
        synthesis functions (the filters are biorthogonal and nearly orthogonal; the cross
        terms are left out). One 1x1 convolution instead of seven 3x3 ones and the synthesis,
        forward and backward."""
        body = self.decoder.body(y)
        x_hat = self.wpt.synthesis(self.decoder.linear(y) + body) + 0.5  # _synthesise, the body kept
        coefficients = self.coefficients(x)
        weights = (self._subband_energies() / coefficients[0].numel()).view(1, -1, 1)
        weight = self.decoder.linear.weight.flatten(1).detach()
        point = y.detach().flatten(2)
        with torch.no_grad():
            # The weighted error of the linear path at y: the coefficients less the held body.
            error = weight @ point + self.decoder.linear.bias.view(-1, 1) - (coefficients - body).flatten(2)
            constant = (error.pow(2) * weights).sum((1, 2))
            slope = 2 * weight.t() @ (weights * error)       # the gradient at y, per latent
            curvature = weight.t() @ (weights * weight)      # W^T diag(weights) W, latents x latents

        def mse(v: torch.Tensor) -> torch.Tensor:
            # sum_c w_c (W (y + d) + b - c)^2 = constant + slope . d + d^T curvature d, exactly:
            # a product over the latent channels instead of the 4x as many coefficient channels.
            d = v.flatten(2) - point
            return constant + (d * (slope + curvature @ d)).sum((1, 2))
        return x_hat, mse

    def _subband_energies(self) -> torch.Tensor:
        """The squared norm, in pixels, of one synthesis function of each coefficient channel
        (an impulse far from the borders; computed once)."""
        device = self.gains.log_gain.device
        if getattr(self, "_energies", None) is None or self._energies.device != device:
            subbands, margin = 4 ** self.wpt.levels, 8  # per colour; the colours' channels follow each other
            impulses = torch.eye(subbands, device=device).view(subbands, subbands, 1, 1)
            with torch.no_grad():
                pixels = self.wpt.synthesis(F.pad(impulses, (margin, margin - 1, margin, margin - 1)))
            colours = self.decoder.linear.out_channels // subbands
            self._energies = pixels.pow(2).flatten(1).sum(1).repeat(colours)
        return self._energies

    @property
    def synthesis_halo(self) -> tuple[int, int]:
        """Latent rows beyond a band that its pixels depend on: (through the decoder's 3x3
        convolutions, through the wavelet synthesis filters)."""
        decoder = 1 + 2 * len([m for m in self.decoder.body if isinstance(m, ResidualBlock)])
        reach = max(self.wpt.pad_before, self.wpt.pad_after)
        wavelet = math.ceil(sum(reach / 2**level for level in range(self.wpt.levels)))
        return decoder, wavelet

    def _band(self, y: Callable[[int, int], torch.Tensor], rows: int, start: int, stop: int, columns: int) -> torch.Tensor:
        """:meth:`_band_rows` in tiles of ``columns`` latent columns (:meth:`_in_column_tiles`)."""
        cols = y(start, start + 1).shape[-1]

        def tile(a: int, b: int) -> torch.Tensor:
            return self._band_rows(lambda first, last: y(first, last)[..., a:b], rows, start, stop)
        return self._in_column_tiles(tile, cols, sum(self.synthesis_halo), columns, self.wpt.factor)

    def _band_rows(self, y: Callable[[int, int], torch.Tensor], rows: int, start: int, stop: int) -> torch.Tensor:
        """Pixels of latent rows ``start:stop`` by the computation :meth:`_synthesise` does for
        all of ``y`` (the same floats up to rounding): wavelet coefficients of the rows within the synthesis filters' reach
        (wrapping around under periodic borders, as the whole transform does), each run of
        them decoded from its own latent rows plus the decoder's reach, then synthesised; the
        rows beyond the band, where a cut edge differs from the whole image, are cut off.
        ``y(first, last)`` gives latent rows ``first:last`` of the ``rows``."""
        decoder_halo, wavelet_halo = self.synthesis_halo
        if self.wpt.boundary == "periodic":
            wanted = [r % rows for r in range(start - wavelet_halo, stop + wavelet_halo)]
        else:  # symmetric: the band's own mirror is right at the image's edges
            wanted = list(range(max(0, start - wavelet_halo), min(rows, stop + wavelet_halo)))
        runs: list[list[int]] = []
        for r in wanted:
            if runs and r == runs[-1][-1] + 1:
                runs[-1].append(r)
            else:
                runs.append([r])
        coefficients = []
        for run in runs:
            first, last = max(0, run[0] - decoder_halo), min(rows, run[-1] + 1 + decoder_halo)
            decoded = self.decoder(y(first, last))
            coefficients.append(decoded[..., run[0] - first: run[-1] + 1 - first, :])
            del decoded
        # One run (symmetric borders): its rows as they are, without a copy.
        joined = torch.cat(coefficients, dim=-2) if len(coefficients) > 1 else coefficients[0]
        del coefficients
        pixels = self.wpt.synthesis(joined)
        del joined
        pixels += 0.5
        offset = wanted.index(start) * self.wpt.factor
        return pixels[..., offset: offset + (stop - start) * self.wpt.factor, :]
