"""``walloc-cc``: WaLLoC's transforms with a channel-conditional entropy model.

The latents of :class:`~codec.models.walloc.WaLLoC` are coded in ``slices`` groups of
channels, one after the other; the entropy parameters of each group come from the
hyperprior and from the groups decoded before it (Minnen & Singh 2020;
:mod:`codec.latent_codecs.channel_conditional`). The analysis, synthesis and hyper
transforms are WaLLoC's, so a model starts from WaLLoC weights (``codec train --init``):
the slice transforms' last layers start at zero, where the model codes exactly as WaLLoC.
"""
from __future__ import annotations

import torch
from torch import nn

from codec.entropy import DEFAULT_CODER  # first: imports compressai lean
from codec.latent_codecs import EntropyBottleneckLatentCodec, GaussianConditionalLatentCodec
from codec.latent_codecs.channel_conditional import ChannelConditionalLatentCodec
from codec.latent_codecs.integer_parameters import derive_channel_conditional_parameters
from codec.models.walloc import WaLLoC


def slice_transform(in_channels: int, hidden: int, out_channels: int, kernel: int = 1) -> nn.Sequential:
    """conv (``kernel`` x ``kernel``) -> LeakyReLU -> conv1x1 -> LeakyReLU -> conv1x1, the last
    one zero (no correction)."""
    net = nn.Sequential(
        nn.Conv2d(in_channels, hidden, kernel, padding=kernel // 2), nn.LeakyReLU(0.1),
        nn.Conv2d(hidden, hidden, 1), nn.LeakyReLU(0.1),
        nn.Conv2d(hidden, out_channels, 1),
    )
    with torch.no_grad():
        net[-1].weight.zero_()
        net[-1].bias.zero_()
    return net


class ChannelConditionalWaLLoC(WaLLoC):
    """WaLLoC whose latents are coded in channel slices, each conditioned on those before."""

    #: Architecture WaLLoC weights may initialise (every WaLLoC tensor has the same name here).
    extends = "walloc"

    def __init__(self, *args, slices: int = 4, slice_hidden: int = 96, slice_kernel: int = 1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.name = "walloc-cc"
        channels = self.latent_channels
        if slice_kernel < 1 or slice_kernel % 2 == 0:
            raise ValueError(f"slice_kernel must be odd, got {slice_kernel}")
        if slices < 1 or channels % slices:
            raise ValueError(f"slices must divide the {channels} latent channels, got {slices}")
        n = channels // slices
        self.slices = slices
        self.slice_transforms = nn.ModuleList(
            slice_transform(2 * channels + k * n, slice_hidden, 2 * n, slice_kernel) for k in range(slices))

    def build_latent_codec(self, coder: str = DEFAULT_CODER, integer: bool | None = None) -> ChannelConditionalLatentCodec:
        """The latent codecs that code ``y`` (streams ``z``, ``y0`` .. ``y<slices-1>``) with the
        coder backend ``coder``; ``integer`` as in the base class."""
        if integer is None:
            integer = self.integer_parameters
        exact = derive_channel_conditional_parameters(
            self.h_s, self.slice_transforms, self.entropy_bottleneck, self.gaussian_conditional) if integer else None
        latents = [GaussianConditionalLatentCodec(self.gaussian_conditional, f"y{k}", coder) for k in range(self.slices)]
        return ChannelConditionalLatentCodec(self.h_a, self.h_s, self.slice_transforms,
                                             EntropyBottleneckLatentCodec(self.entropy_bottleneck, "z", coder),
                                             latents, integer=exact)
