"""Shared machinery of our models: variable-rate mean-scale hyperprior coding.

A subclass supplies four transforms: ``g_a`` (image -> latents y), ``g_s`` (latents ->
image), ``h_a`` (y -> hyper-latents z) and ``h_s`` (z -> scales and means of y, stacked on
the channel axis). This class adds gain units for variable rate, compressai's
``EntropyBottleneck`` for z and ``GaussianConditional`` for y, the training forward pass,
and real compression through :mod:`codec.entropy.rangecoder`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from codec.entropy import decode_bottleneck, decode_gaussian, encode_bottleneck, encode_gaussian  # first: imports compressai lean
from compressai.entropy_models import EntropyBottleneck, GaussianConditional  # noqa: E402,I001
from codec.models.gain import GainUnits, interpolate_levels

# RD trade-offs of the trained quality levels (loss = lambda * 255^2 * MSE + bpp), the
# first six of compressai's MSE lambdas.
DEFAULT_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483)


def scale_table() -> torch.Tensor:
    """The 64 scales of the Gaussian CDF tables: compressai's ``get_scale_table()``.

    Written here because ``compressai.models`` imports all of compressai (seconds); a test
    checks the two are equal.
    """
    return torch.exp(torch.linspace(math.log(0.11), math.log(256), 64))


class VariableRateModel(nn.Module):
    """Mean-scale hyperprior with gain units; subclasses define the transforms."""

    #: Input height and width must be multiples of this (total down-sampling to z).
    pad_multiple: int = 64

    def __init__(self, latent_channels: int, hyper_channels: int, lambdas: tuple[float, ...] = DEFAULT_LAMBDAS) -> None:
        super().__init__()
        self.latent_channels = latent_channels
        self.lambdas = tuple(float(v) for v in lambdas)
        self.gains = GainUnits(len(self.lambdas), latent_channels)
        self.entropy_bottleneck = EntropyBottleneck(hyper_channels)
        self.gaussian_conditional = GaussianConditional(None)
        self.name = type(self).__name__.lower()
        self.weights_hash = b"\0" * 8

    # Transforms, defined by subclasses.
    g_a: nn.Module
    g_s: nn.Module
    h_a: nn.Module
    h_s: nn.Module

    # What compressai's CompressionModel gives its subclasses, for our two entropy models.

    def update(self, force: bool = False) -> bool:
        """Build the CDF tables of both entropy models; True if any was (re)built."""
        updated = self.entropy_bottleneck.update(force=force)
        return self.gaussian_conditional.update_scale_table(scale_table(), force=force) or updated

    def aux_loss(self) -> torch.Tensor:
        """The entropy bottleneck's quantile loss, trained on its own optimiser."""
        return self.entropy_bottleneck.loss()

    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor], strict: bool = True, assign: bool = False):
        """Load weights, first sizing the CDF tables (empty until :meth:`update`) to the saved ones."""
        tables = {"entropy_bottleneck": ("_quantized_cdf", "_offset", "_cdf_length"),
                  "gaussian_conditional": ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")}
        for module_name, names in tables.items():
            module = getattr(self, module_name)
            for name in names:
                buffer, key = getattr(module, name), f"{module_name}.{name}"
                if buffer.numel() == 0 and key in state_dict:
                    buffer.resize_(state_dict[key].size())
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
        scales, means = self.h_s(z_hat).chunk(2, dim=1)
        return scales, means

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> dict:
        """Training pass with additive-noise likelihoods; ``quality`` is one per sample.

        The synthesis sees rounded latents (straight-through gradient), as at test time.
        """
        y = self.g_a(x).float() * self.gains.gain(quality)
        z = self.h_a(y).float()
        # Likelihoods are computed in float32 even under autocast: bf16 is too coarse for rates.
        with torch.autocast(x.device.type, enabled=False):
            z_hat, z_likelihoods = self.entropy_bottleneck(z)
        scales, means = (t.float() for t in self._hyper_parameters(z_hat))
        with torch.autocast(x.device.type, enabled=False):
            _, y_likelihoods = self.gaussian_conditional(y, scales, means=means)
        y_hat = y + (torch.round(y - means) + means - y).detach()
        x_hat = self.g_s(y_hat * self.gains.inverse_gain(quality))
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an image batch [B, 3, H, W], got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % self.pad_multiple or w % self.pad_multiple:
            raise ValueError(f"height and width must be multiples of {self.pad_multiple}, got {h}x{w}")

    @torch.inference_mode()
    def compress(self, x: torch.Tensor, quality: float) -> dict:
        """Encode a batch [B, 3, H, W] in [0, 1] to one y and one z stream per image."""
        return self.compress_latents(*self.analyse(x, quality))

    @torch.inference_mode()
    def analyse(self, x: torch.Tensor, quality: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents ``y`` (gains applied) and hyper-latents ``z`` of a batch, before rounding."""
        self._check_input(x)
        y = self.g_a(x) * self.gains.gain(quality)
        return y, self.h_a(y)

    @torch.inference_mode()
    def compress_latents(self, y: torch.Tensor, z: torch.Tensor) -> dict:
        """Round and code given latents (e.g. refined ones) as :meth:`compress` does."""
        z_strings = encode_bottleneck(self.entropy_bottleneck, z)
        z_hat = decode_bottleneck(self.entropy_bottleneck, z_strings, tuple(z.shape[-2:])).to(z.device)
        scales, means = self._hyper_parameters(z_hat)
        y_strings = encode_gaussian(self.gaussian_conditional, y, scales, means)
        return {"strings": [y_strings, z_strings], "shape": tuple(z.shape[-2:])}

    @torch.inference_mode()
    def decompress(self, strings: list[list[bytes]], shape: tuple[int, int], quality: float) -> dict:
        """Decode what :meth:`compress` wrote; returns ``{"x_hat": [B, 3, H, W]}`` (unclamped)."""
        if len(strings) != 2 or len(strings[0]) != len(strings[1]):
            raise ValueError("strings must be [y_streams, z_streams] of equal length")
        device = self.gains.log_gain.device
        z_hat = decode_bottleneck(self.entropy_bottleneck, list(strings[1]), tuple(shape)).to(device)
        scales, means = self._hyper_parameters(z_hat)
        y_hat = decode_gaussian(self.gaussian_conditional, list(strings[0]), scales, means).to(device)
        return {"x_hat": self.g_s(y_hat * self.gains.inverse_gain(quality))}


def rd_loss(model: VariableRateModel, x: torch.Tensor, quality: torch.Tensor, net: nn.Module | None = None) -> dict:
    """Per-sample RD loss ``lambda(q) * 255^2 * MSE + bpp``, averaged over the batch.

    ``net`` runs the forward pass when given (e.g. a DistributedDataParallel wrapper of
    ``model``); ``model`` supplies the lambdas.
    """
    out = (net or model)(x, quality)
    num_pixels = x.shape[-2] * x.shape[-1]
    bits = sum(l.clamp_min(1e-9).log().flatten(1).sum(1) for l in out["likelihoods"].values()) / -math.log(2)
    bpp = bits / num_pixels
    mse = (out["x_hat"].float() - x).pow(2).flatten(1).mean(1)
    loss = (model.lmbda(quality) * 255**2 * mse + bpp).mean()
    return {"loss": loss, "bpp": bpp.mean(), "mse": mse.mean(), "x_hat": out["x_hat"]}
