"""Shared machinery of our models: variable-rate mean-scale hyperprior coding.

A subclass supplies four transforms: ``g_a`` (image -> latents y), ``g_s`` (latents ->
image), ``h_a`` (y -> hyper-latents z) and ``h_s`` (z -> scales and means of y, stacked on
the channel axis). This class adds gain units for variable rate and composes the latent
codecs (:mod:`codec.latent_codecs`) that code ``y``: a hyperprior of compressai's
``EntropyBottleneck`` for z and ``GaussianConditional`` for y. It owns the names and order
of the streams of its files (:attr:`VariableRateModel.stream_names`); the training loss is
in :mod:`codec.training.loss`.

Entropy parameters: training uses the float ``h_s``; coding uses either the float ``h_s``
(files of the retired models and files written before integer parameters) or its exact
integer form (:mod:`codec.latent_codecs.integer_parameters`), derived from the float weights
when first needed. :attr:`VariableRateModel.integer_parameters` says which new files use; a
file's header says which it was written with (docs/bitstream.md).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from codec.entropy import DEFAULT_CODER  # first: imports compressai lean
from codec.entropy.compressai_models import size_table_buffers
from codec.latent_codecs import (
    EntropyBottleneckLatentCodec,
    GaussianConditionalLatentCodec,
    HyperpriorLatentCodec,
    Shapes,
    Strings,
)
from codec.latent_codecs.base import straight_through_round
from codec.latent_codecs.gaussian_conditional import scale_table  # noqa: F401 - also imported from here
from codec.latent_codecs.integer_parameters import derive_integer_parameters
from codec.latent_codecs.reconstruction import ReconstructionOffsets
from codec.latent_codecs.prior_correction import PriorCorrection
from compressai.entropy_models import EntropyBottleneck, GaussianConditional  # noqa: E402,I001
from codec.models.gain import GainUnits, interpolate_levels

#: ``pixels(index)``: the pixel rows of an int64 index tensor of one image, ``[1, 3, len(index), width]``;
#: ``pixels(index, first, last)``: columns ``first:last`` of them only.
PixelRows = Callable[..., torch.Tensor]

# RD trade-offs of the trained quality levels (loss = lambda * 255^2 * MSE + bpp), the
# first six of compressai's MSE lambdas.
DEFAULT_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483)


#: How a training pass counts the rate (:meth:`VariableRateModel.forward`): of the latents
#: with additive uniform noise, or of the rounded ones the coder writes.
TRAINING_RATES = ("noise", "rounded", "soft-rounded")

#: Temperature of the stochastic soft rounding of ``rate="soft-rounded"`` (the end of the
#: effort levels' annealing, :mod:`codec.encoding.effort`): nearly hard, soft near a bin's edge.
SOFT_ROUNDING_TAU = 0.2


class VariableRateModel(nn.Module):
    """Mean-scale hyperprior with gain units; subclasses define the transforms."""

    #: Input height and width must be multiples of this (total down-sampling to z).
    pad_multiple: int = 64
    #: Whether new files of this model use integer entropy parameters (the same on every machine).
    integer_parameters: bool = False

    def __init__(self, latent_channels: int, hyper_channels: int, lambdas: tuple[float, ...] = DEFAULT_LAMBDAS,
                 reconstruction_offsets: bool = False, prior_correction: int = 0) -> None:
        super().__init__()
        self.latent_channels = latent_channels
        self.lambdas = tuple(float(v) for v in lambdas)
        self.gains = GainUnits(len(self.lambdas), latent_channels)
        self.entropy_bottleneck = EntropyBottleneck(hyper_channels)
        self.gaussian_conditional = GaussianConditional(None)
        #: The synthesis's reconstruction offsets of the quantised latents (a trained table;
        #: :mod:`codec.latent_codecs.reconstruction`), or None: the bin centres.
        self.reconstruction = ReconstructionOffsets() if reconstruction_offsets else None
        #: The encoder's correction of the latents from the hyperprior's prediction of them, a
        #: pointwise network of ``prior_correction`` channels (:mod:`codec.latent_codecs.prior_correction`),
        #: or None. The decoder never runs it.
        self.prior_correction = PriorCorrection(latent_channels, prior_correction) if prior_correction else None
        self.name = type(self).__name__.lower()
        self.weights_hash = b"\0" * 8

    # Transforms, defined by subclasses.
    g_a: nn.Module
    g_s: nn.Module
    h_a: nn.Module
    h_s: nn.Module

    def build_latent_codec(self, coder: str = DEFAULT_CODER, integer: bool | None = None) -> HyperpriorLatentCodec:
        """The latent codecs that code ``y`` with the coder backend ``coder``, composed over
        this model's own modules (cheap to build: the entropy tables and the integer network
        are cached elsewhere). ``integer``: code with integer entropy parameters (None: the
        model's default, :attr:`integer_parameters`); ValueError if ``h_s`` has no integer form."""
        if integer is None:
            integer = self.integer_parameters
        exact = derive_integer_parameters(self.h_s, self.entropy_bottleneck, self.gaussian_conditional) if integer else None
        return HyperpriorLatentCodec(self.h_a, self.h_s,
                                     EntropyBottleneckLatentCodec(self.entropy_bottleneck, "z", coder),
                                     GaussianConditionalLatentCodec(self.gaussian_conditional, "y", coder,
                                                                    reconstruction=self.reconstruction),
                                     integer=exact, correction=self.prior_correction)

    @property
    def latent_codec(self) -> HyperpriorLatentCodec:
        """:meth:`build_latent_codec` with the default coder and entropy parameters."""
        return self.build_latent_codec()

    @property
    def stream_names(self) -> tuple[str, ...]:
        """Names of the streams of this model's files, in file order."""
        return self.build_latent_codec(integer=False).stream_names

    def latent_shapes(self, height: int, width: int) -> Shapes:
        """Per-image shape of every stream's latent for a padded image of ``height`` x ``width``."""
        codec = self.build_latent_codec(integer=False)
        stride = self.pad_multiple // codec.downsampling
        return codec.shapes((self.latent_channels, height // stride, width // stride),
                                        self.entropy_bottleneck.channels)

    # What compressai's CompressionModel gives its subclasses, for our two entropy models.

    def update(self, force: bool = False) -> bool:
        """Build the CDF tables of every entropy model; True if any was (re)built."""
        return self.build_latent_codec(integer=False).update(force=force)

    def aux_loss(self) -> torch.Tensor:
        """The entropy bottleneck's quantile loss, trained on its own optimiser."""
        return self.entropy_bottleneck.loss()

    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor], strict: bool = True, assign: bool = False):
        """Load weights, first sizing the CDF tables (empty until :meth:`update`) to the saved ones."""
        size_table_buffers(self.entropy_bottleneck, "entropy_bottleneck.", state_dict)
        size_table_buffers(self.gaussian_conditional, "gaussian_conditional.", state_dict)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    @property
    def quality_range(self) -> tuple[float, float]:
        """Accepted qualities: 1 (lowest rate) to the number of trained levels."""
        return self.gains.quality_range

    def lmbda(self, quality: torch.Tensor) -> torch.Tensor:
        """RD trade-off of a (fractional) quality: geometric interpolation of the levels."""
        table = torch.tensor(self.lambdas, dtype=torch.float32, device=quality.device).log()[:, None]
        return interpolate_levels(table, quality.float())[:, 0].exp()

    def _hyper_parameters(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scales, means) of ``y`` predicted from the quantised hyper-latents."""
        return self.build_latent_codec(integer=False).parameters(z_hat)

    def forward(self, x: torch.Tensor, quality: torch.Tensor, rate: str = "noise") -> dict[str, Any]:
        """Training pass; ``quality`` is one per sample. The synthesis sees rounded latents
        (straight-through gradient), as at test time.

        ``rate="noise"``: the likelihoods of the latents with additive uniform noise (the
        usual relaxation), returned as ``likelihoods``. ``rate="rounded"``: the ``bits`` of
        each image of the rounded latents, centred as the coder centres them, which is
        what a file costs (straight-through gradients, which underprice a latent that still
        rounds to the same value: meant for fitting the entropy model with the transforms
        that make the latents, ``g_a`` and ``h_a``, frozen; docs/training.md).
        ``rate="soft-rounded"``: the same ``bits``, of ``y`` rounded by stochastic Gumbel
        annealing (:func:`codec.encoding.refine.sga_round`, what refinement optimises) at
        :data:`SOFT_ROUNDING_TAU`, priced inside a bin, unlike straight-through rounding;
        ``z`` rounded straight through. The synthesis sees the soft values.
        """
        if rate not in TRAINING_RATES:
            raise ValueError(f"rate must be {' or '.join(map(repr, TRAINING_RATES))}, got {rate!r}")
        y = self.g_a(x).float() * self.gains.gain(quality)
        latents = self.build_latent_codec(integer=False)
        if rate != "noise":
            round_fn = straight_through_round
            if rate == "soft-rounded":
                from codec.encoding.refine import sga_round

                round_fn = lambda v: sga_round(v, SOFT_ROUNDING_TAU, None)  # noqa: E731 - the global generator
            with torch.autocast(y.device.type, enabled=False):  # rates in float32, as the likelihoods
                corrects = {"correct": True} if self.prior_correction is not None else {}  # walloc-cc's has none
                out = latents.relaxed(y, latents.hyper_latents(y), round_fn, straight_through_round, **corrects)
            counted = {"bits": out["bits"]}
        else:
            out = latents(y)
            counted = {"likelihoods": out["likelihoods"]}
        return {"x_hat": self.g_s(out["y_hat"] * self.gains.inverse_gain(quality)), **counted}

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an image batch [B, 3, H, W], got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % self.pad_multiple or w % self.pad_multiple:
            raise ValueError(f"height and width must be multiples of {self.pad_multiple}, got {h}x{w}")

    @torch.inference_mode()
    def compress(self, x: torch.Tensor, quality: float, coder: str = DEFAULT_CODER,
                 integer: bool | None = None) -> dict[str, Any]:
        """Encode a batch [B, 3, H, W] in [0, 1] with the coder backend ``coder``:
        ``{"strings": Strings, "shapes": Shapes}``, the streams named and ordered as :attr:`stream_names`.
        ``integer``: integer entropy parameters (None: :attr:`integer_parameters`)."""
        return self.compress_latents(*self.analyse(x, quality, integer), coder=coder, integer=integer)

    @torch.inference_mode()
    def analyse(self, x: torch.Tensor, quality: float, integer: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents ``y`` (gains applied, and corrected by :attr:`prior_correction` with the
        entropy parameters of ``integer``, as :meth:`compress_latents` will code them) and
        hyper-latents ``z`` of a batch, before rounding."""
        self._check_input(x)
        y = self.g_a(x) * self.gains.gain(quality)
        correct = self.prior_correction is not None  # with the coder's parameters; else no integer network is needed
        codec = self.build_latent_codec(integer=integer if correct else False)
        z = codec.hyper_latents(y)
        return (codec.corrected(y, z) if correct else y), z

    @torch.inference_mode()
    def compress_latents(self, y: torch.Tensor, z: torch.Tensor, coder: str = DEFAULT_CODER,
                         integer: bool | None = None) -> dict[str, Any]:
        """Round and code given latents (e.g. refined ones) as :meth:`compress` does."""
        out = self.build_latent_codec(coder, integer).compress(y, z)
        return {"strings": out["strings"], "shapes": out["shapes"]}

    @torch.inference_mode()
    def compress_image(self, pixels: PixelRows, height: int, width: int, quality: float, coder: str = DEFAULT_CODER,
                       integer: bool | None = None) -> dict[str, Any]:
        """:meth:`compress` of one image of ``height`` x ``width`` pixels (multiples of
        :attr:`pad_multiple`) whose rows come from ``pixels(index)`` (``[1, 3, len(index),
        width]`` in [0, 1] for an int64 tensor of row numbers), so that a model may code it a
        band of rows at a time. Here: the whole image at once."""
        return self.compress(pixels(torch.arange(height)), quality, coder=coder, integer=integer)

    @torch.inference_mode()
    def decompress_image(self, strings: Strings, shapes: Shapes, quality: float, write: Callable[[int, torch.Tensor], None],
                         coder: str = DEFAULT_CODER, integer: bool | None = None) -> None:
        """:meth:`decompress` of one image, its pixels handed to ``write(first_row, rows)``
        (``[1, 3, n, width]``, unclamped) in order, so that a model may decode it a band of
        rows at a time. Here: the whole image at once."""
        write(0, self.decompress(strings, shapes, quality, coder=coder, integer=integer)["x_hat"])

    def _check_streams(self, strings: Strings) -> None:
        if set(strings) != set(self.stream_names) or len({len(v) for v in strings.values()}) != 1:
            raise ValueError(f"expected the streams {', '.join(self.stream_names)}, one per image, got {', '.join(strings)}")

    @torch.inference_mode()
    def decompress(self, strings: Strings, shapes: Shapes, quality: float, coder: str = DEFAULT_CODER,
                   integer: bool | None = None) -> dict[str, Any]:
        """Decode what :meth:`compress` wrote (with the same ``integer``); returns
        ``{"x_hat": [B, 3, H, W]}`` (unclamped).

        ValueError if the streams or shapes are not those of this model.
        """
        self._check_streams(strings)
        y_hat = self.build_latent_codec(coder, integer).decompress(strings, shapes)["y_hat"].to(self.gains.log_gain.device)
        return {"x_hat": self.g_s(y_hat * self.gains.inverse_gain(quality))}
