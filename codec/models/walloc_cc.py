"""``walloc-cc``: WaLLoC's transforms with a context-conditional entropy model.

The latents of :class:`~codec.models.walloc.WaLLoC` are coded in groups, one after the
other: ``slices`` groups of channels (Minnen & Singh 2020), each split into the two halves of
a checkerboard with ``checkerboard`` (He et al. 2021); the entropy parameters of each group
come from the hyperprior and from the groups decoded before it
(:mod:`codec.latent_codecs.channel_conditional`). The analysis, synthesis and hyper
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
    """WaLLoC whose latents are coded in groups, each conditioned on those before: ``slices``
    channel slices, each split by a checkerboard when ``checkerboard`` (anchors, then the rest)."""

    #: Architecture WaLLoC weights may initialise (every WaLLoC tensor has the same name here).
    extends = "walloc"

    #: The exact integer context transforms allocate many blocks of 1-4 MB, which fragment the
    #: heap under the default threshold: mapped on their own, the 24 MP two-thread encode peaks
    #: 0.06-0.07 GB lower (0.76-0.77 GB, within the bound) for about 8 % more time
    #: (docs/large-images.md, "Tiles").
    HEAP_MMAP_THRESHOLD = 1 << 20

    #: The walk over the groups holds about 16 bytes a latent of a coding band at full width:
    #: images wider than 6,144 px take coding bands of fewer rows. A 20000 x 1100 panorama
    #: (16 rows): encode 1.12 -> 0.84 GB, decode 0.81 -> 0.72 GB; 100 MP (12248 px, 32 rows):
    #: 1.22 -> 1.12 and 1.31 -> 1.16 GB, 9-13 % slower (docs/large-images.md, "Tiles").
    CODING_LATENTS = 64 * 768

    def __init__(self, *args, slices: int = 4, slice_hidden: int = 96, slice_kernel: int = 1,
                 checkerboard: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.name = "walloc-cc"
        channels = self.latent_channels
        if self.prior_correction is not None:
            raise ValueError("prior_correction is for walloc's mean-scale hyperprior; walloc-cc's context model has none yet")
        if slice_kernel < 1 or slice_kernel % 2 == 0:
            raise ValueError(f"slice_kernel must be odd, got {slice_kernel}")
        if slices < 1 or channels % slices:
            raise ValueError(f"slices must divide the {channels} latent channels, got {slices}")
        if checkerboard and slice_kernel < 3:
            raise ValueError("a checkerboard context needs slice_kernel >= 3 (the anchors are the neighbours)")
        n = channels // slices
        self.slices, self.checkerboard = slices, bool(checkerboard)
        parts = (0, 1) if checkerboard else (0,)  # the checkerboard's rest also sees its slice's anchors
        self.slice_transforms = nn.ModuleList(
            slice_transform(2 * channels + k * n + part * n, slice_hidden, 2 * n, slice_kernel)
            for k in range(slices) for part in parts)

    def build_latent_codec(self, coder: str = DEFAULT_CODER, integer: bool | None = None) -> ChannelConditionalLatentCodec:
        """The latent codecs that code ``y`` (streams ``z``, then ``y0`` .. ``y<slices-1>``, or
        ``y0a``, ``y0b``, ... with a checkerboard) with the coder backend ``coder``; ``integer``
        as in the base class."""
        if integer is None:
            integer = self.integer_parameters
        exact = derive_channel_conditional_parameters(
            self.h_s, self.slice_transforms, self.entropy_bottleneck, self.gaussian_conditional) if integer else None
        suffixes = ("a", "b") if self.checkerboard else ("",)
        latents = [GaussianConditionalLatentCodec(self.gaussian_conditional, f"y{k}{suffix}", coder,
                                                  reconstruction=self.reconstruction)
                   for k in range(self.slices) for suffix in suffixes]
        return ChannelConditionalLatentCodec(self.h_a, self.h_s, self.slice_transforms,
                                             EntropyBottleneckLatentCodec(self.entropy_bottleneck, "z", coder),
                                             latents, self.slices, self.checkerboard, integer=exact)
