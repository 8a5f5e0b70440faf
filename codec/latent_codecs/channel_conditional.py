"""Context-conditional hyperprior: ``y`` coded in groups, each group's entropy parameters
conditioned on the groups decoded before it; groups are channel slices (Minnen & Singh 2020,
"Channel-wise autoregressive entropy models for learned image compression"), optionally each
split into the two halves of a checkerboard (He et al. 2021, "Checkerboard context model for
efficient learned image compression").

::

    y --h_a--> z --[hyper codec: stream "z"]--> z_hat --h_s--> features (scales, means of all y)
    for every slice k of y's channels, and (with a checkerboard) for its anchors then the rest:
        (scales, means) = features of its channels + transforms[g](features, context)
        --[latent codec: stream "y<k>" or "y<k>a", "y<k>b"]--> y_hat of the group

The context of a group is ``y_hat`` of the slices before (all channels of them, every
position) and, for the second half of a checkerboard slice, its anchors' ``y_hat`` (zero at
the positions not yet decoded). Anchors are the positions with ``(row + column)`` even; each
half is coded as a latent of half the width (row by row, the half's positions in order). A
group's transform predicts a correction to the hyperprior's own parameters, so transforms
whose last layer is zero code exactly as the hyperprior does: a model is fine-tuned from
hyperprior weights without a restart.

With integer entropy parameters (``integer`` given), ``compress`` and ``decompress`` take the
table indexes and means of every group from
:class:`~codec.latent_codecs.integer_parameters.IntegerChannelConditionalParameters`, which
also carries the fixed-point ``y_hat`` from group to group, so a decoder derives the encoder's
parameters bit for bit on every machine; training (``forward``) uses the float transforms.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from codec.band_pool import Prefetcher
from codec.latent_codecs.base import LatentCodec, Shapes, Strings
from codec.latent_codecs.entropy_bottleneck import EntropyBottleneckLatentCodec
from codec.latent_codecs.gaussian_conditional import GaussianConditionalLatentCodec
from codec.latent_codecs.hyperprior import HyperLatentsInBands, synthesis_input
from codec.latent_codecs.integer_parameters import ACTIVATION_BITS, RANGE_BITS, IntegerChannelConditionalParameters
from codec.latent_codecs.row_bands import narrowed

#: The float transforms see their inputs clamped as the integer ones do (``+-2^RANGE_BITS``).
INPUT_RANGE = float(2**RANGE_BITS)


@dataclass(frozen=True)
class Group:
    """One coded group of latents: channel slice ``slice``, at the positions ``part`` names
    (``"all"``, or a checkerboard's ``"anchors"`` then ``"rest"``), coded by ``transform``."""

    slice: int
    part: str
    transform: int


def checkerboard_split(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(anchors, rest)`` of ``t`` ``[..., H, W]`` (W even), each ``[..., H, W/2]``: the positions
    with ``(row + column)`` even, then odd, each row's in order."""
    pairs = t.unflatten(-1, (t.shape[-1] // 2, 2))
    parity = (torch.arange(t.shape[-2], device=t.device) % 2).view(-1, 1, 1).expand(*pairs.shape[:-1], 1)
    return pairs.gather(-1, parity).squeeze(-1), pairs.gather(-1, 1 - parity).squeeze(-1)


def checkerboard_merge(anchors: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    """The tensor whose :func:`checkerboard_split` is ``(anchors, rest)``."""
    parity = (torch.arange(anchors.shape[-2], device=anchors.device) % 2).view(-1, 1).bool()
    first = torch.where(parity, rest, anchors)  # column 2j of row h: an anchor if h is even
    second = torch.where(parity, anchors, rest)
    return torch.stack([first, second], dim=-1).flatten(-2)


class ChannelConditionalLatentCodec(HyperLatentsInBands, LatentCodec):
    """``hyper`` codes ``z = h_a(y)``; ``latents[g]`` codes group ``g`` of ``y`` (:attr:`groups`)
    with parameters from ``h_s(z_hat)`` corrected by ``transforms[g]``.

    Streams, in file order: the hyper codec's, then one per group. ``downsampling`` is the
    ratio of ``y``'s to ``z``'s spatial size.
    """

    def __init__(self, h_a: nn.Module, h_s: nn.Module, transforms: Sequence[nn.Module],
                 hyper: EntropyBottleneckLatentCodec, latents: Sequence[GaussianConditionalLatentCodec],
                 slices: int, checkerboard: bool = False, downsampling: int = 4,
                 integer: IntegerChannelConditionalParameters | None = None) -> None:
        parts = ("anchors", "rest") if checkerboard else ("all",)
        self.groups = [Group(k, part, k * len(parts) + i) for k in range(slices) for i, part in enumerate(parts)]
        if len(transforms) != len(self.groups) or len(latents) != len(self.groups):
            raise ValueError(f"{len(self.groups)} groups need as many transforms and latent codecs")
        self.h_a, self.h_s = h_a, h_s
        self.transforms = list(transforms)
        self.hyper, self.latents = hyper, list(latents)
        self.slices, self.checkerboard = slices, checkerboard
        self.downsampling = downsampling
        self.integer = integer

    @property
    def stream_names(self) -> tuple[str, ...]:
        """Names of the streams, in file order."""
        return (self.hyper.name, *(latent.name for latent in self.latents))

    def hyper_latents(self, y: torch.Tensor) -> torch.Tensor:
        """``z = h_a(y)``, before quantisation."""
        return self.h_a(y)

    def latent_shape(self, shapes: Shapes) -> tuple[int, ...]:
        """The per-image shape of ``y`` (C, H, W) of the stream ``shapes`` (empty unless every
        group's is the same (C / slices, H, W or W / 2))."""
        groups = {tuple(shapes.get(latent.name, ())) for latent in self.latents}
        if len(groups) != 1 or len(shape := groups.pop()) != 3:
            return ()
        channels, height, width = shape
        return channels * self.slices, height, width * 2 if self.checkerboard else width

    def shapes(self, y_shape: tuple[int, ...], hyper_channels: int) -> Shapes:
        """Per-image shapes of every stream for a latent ``y`` of ``y_shape`` (C, H, W)."""
        channels, height, width = y_shape
        d = self.downsampling
        group_shape = (channels // self.slices, height, width // 2 if self.checkerboard else width)
        return {self.hyper.name: (hyper_channels, -(-height // d), -(-width // d)),
                **{latent.name: group_shape for latent in self.latents}}

    # One walk over the groups, shared by training, refinement, coding and decoding.

    def _walk(self, y: torch.Tensor | None, parameters: Callable[[Group, list[torch.Tensor]], tuple[torch.Tensor, ...]],
              code: Callable[[Group, torch.Tensor | None, tuple[torch.Tensor, ...]], tuple[torch.Tensor, torch.Tensor]]
              ) -> torch.Tensor:
        """Visit the groups in order and return ``y_hat`` (all channels, every position).

        ``parameters(group, context)`` gives the group's parameter tensors at every position of
        its slice from the context (the context form of the slices before and, for checkerboard
        rests, of the slice's anchors, zero elsewhere); ``code(group, y of the group or None,
        its parameters at its positions)`` gives ``(y_hat, context form)`` of the group: the
        float ``y_hat`` in training, the fixed-point values with integer parameters."""
        y_slices = y.chunk(self.slices, dim=1) if y is not None else [None] * self.slices
        done: list[torch.Tensor] = []
        y_hats: list[torch.Tensor] = []
        for k in range(self.slices):
            groups = [g for g in self.groups if g.slice == k]
            if not self.checkerboard:
                y_hat, context = code(groups[0], y_slices[k], parameters(groups[0], done))
            else:
                y_parts = checkerboard_split(y_slices[k]) if y is not None else (None, None)
                params = parameters(groups[0], done)
                hat_a, context_a = code(groups[0], y_parts[0], tuple(checkerboard_split(p)[0] for p in params))
                anchors_only = checkerboard_merge(context_a, torch.zeros_like(context_a))
                params = parameters(groups[1], [*done, anchors_only])
                hat_r, context_r = code(groups[1], y_parts[1], tuple(checkerboard_split(p)[1] for p in params))
                y_hat, context = checkerboard_merge(hat_a, hat_r), checkerboard_merge(context_a, context_r)
            y_hats.append(y_hat)
            done.append(context)
        return torch.cat(y_hats, dim=1)

    def _float_parameters(self, features: torch.Tensor) -> Callable[[Group, list[torch.Tensor]], tuple[torch.Tensor, ...]]:
        """Float (scales, means) of a group's slice: the hyperprior's plus the transform's correction."""
        def parameters(group: Group, context: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
            inputs = torch.cat([features, *context], dim=1).clamp(-INPUT_RANGE, INPUT_RANGE)
            delta = self.transforms[group.transform](inputs).float()
            n, channels, k = delta.shape[1] // 2, features.shape[1] // 2, group.slice
            return (features[:, k * n:(k + 1) * n] + delta[:, :n],
                    features[:, channels + k * n:channels + (k + 1) * n] + delta[:, n:])
        return parameters

    def _integer_parameters(self, features: torch.Tensor) -> Callable[[Group, list[torch.Tensor]], tuple[torch.Tensor, ...]]:
        def parameters(group: Group, context: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
            return self.integer.group_parameters(group.transform, group.slice, features, context)
        return parameters

    def forward(self, y: torch.Tensor, *params: torch.Tensor) -> dict[str, Any]:
        hyper_out = self.hyper.forward(self.h_a(y).float())
        likelihoods = dict(hyper_out["likelihoods"])

        def code(group: Group, y_group: torch.Tensor, p: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.latents[group.transform].forward(y_group, *p)
            likelihoods.update(out["likelihoods"])
            return out["y_hat"], out["y_quantised"]

        y_hat = self._walk(y, self._float_parameters(self.h_s(hyper_out["y_hat"]).float()), code)
        return {"likelihoods": likelihoods, "y_hat": y_hat}

    def relaxed(self, y: torch.Tensor, z: torch.Tensor, round_fn: Callable[[torch.Tensor], torch.Tensor],
                z_round_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, Any]:
        """``y_hat``, ``z_hat`` and the bits of each image with ``round_fn`` in place of rounding
        (differentiable for a soft ``round_fn``), centred as the coder centres; ``z_round_fn``,
        when given, replaces ``round_fn`` for ``z``. ``y_hat`` is what the synthesis sees (with
        the reconstruction offsets, if any), ``y_quantised`` the rounded latents themselves."""
        z_hat = self.hyper.centred(z, round_fn if z_round_fn is None else z_round_fn)
        bits = [self.hyper.bits(z_hat)]
        quantised: dict[int, torch.Tensor] = {}

        def code(group: Group, y_group: torch.Tensor, p: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
            scales, means = p
            latent = self.latents[group.transform]
            y_quantised = quantised[group.transform] = round_fn(y_group - means) + means
            bits.append(latent.bits(y_quantised, scales, means))
            return synthesis_input(latent, y_quantised, y_group, scales, means), y_quantised

        y_hat = self._walk(y, self._float_parameters(self.h_s(z_hat).float()), code)
        y_quantised = torch.cat([self._merged([quantised[g.transform] for g in self.groups if g.slice == k])
                                 for k in range(self.slices)], dim=1)
        return {"y_hat": y_hat, "y_quantised": y_quantised, "z_hat": z_hat, "bits": sum(bits)}

    def _merged(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """One slice's tensor from its groups' parts (a checkerboard's anchors and rest)."""
        return checkerboard_merge(*parts) if self.checkerboard else parts[0]

    def compress(self, y: torch.Tensor, *params: torch.Tensor) -> dict[str, Any]:
        """Code ``y``; ``params`` may hold given hyper-latents ``z`` (e.g. refined ones)."""
        z = params[0] if params else self.h_a(y)
        hyper_out = self.hyper.compress(z)
        strings, shapes = dict(hyper_out["strings"]), dict(hyper_out["shapes"])

        def code(group: Group, y_group: torch.Tensor, p: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
            latent = self.latents[group.transform]
            out = latent.compress_indexed(y_group, *p[:2]) if self.integer is not None else latent.compress(y_group, *p)
            strings.update(out["strings"])
            shapes.update(out["shapes"])
            context = self.integer.fixed_point(out["symbols"], p[2]) if self.integer is not None else out["y_quantised"]
            return out["y_hat"], context

        if self.integer is not None:
            parameters = self._integer_parameters(self.integer.features(hyper_out["symbols"].to(y.device)))
        else:
            parameters = self._float_parameters(self.h_s(hyper_out["y_hat"].to(y.device)).float())
        y_hat = self._walk(y, parameters, code)
        return {"strings": strings, "shapes": shapes, "y_hat": y_hat}

    def check_strings(self, strings: Strings, shapes: Shapes) -> None:
        """ValueError unless every group's stream has the format's substreams (before any decoding)."""
        for latent in self.latents:
            latent.check_strings(strings, shapes)

    def decompress(self, strings: Strings, shapes: Shapes, *params: torch.Tensor) -> dict[str, Any]:
        device = next(self.h_s.parameters()).device
        self.check_strings(strings, shapes)  # before the parameters of every latent are computed
        hyper_out = self.hyper.decompress(strings, shapes)

        def code(group: Group, _: None, p: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
            latent = self.latents[group.transform]
            if self.integer is None:
                out = latent.decompress(strings, shapes, *p)
                return out["y_hat"], out["y_quantised"]
            symbols = latent.decompress_symbols(strings, shapes, p[0]).to(device)
            return latent.reconstruct(symbols, p[0], p[1]), self.integer.fixed_point(symbols, p[2])

        if self.integer is not None:
            parameters = self._integer_parameters(self.integer.features(hyper_out["symbols"].to(device)))
        else:
            parameters = self._float_parameters(self.h_s(hyper_out["y_hat"].to(device)).float())
        return {"y_hat": self._walk(None, parameters, code)}

    # One tall image a band of rows at a time (integer parameters), as the hyperprior codec does.

    def _band_halo(self, groups: int) -> int:
        """Rows of ``y`` beyond a band that the parameters of ``groups`` groups in a chain depend
        on (each on the ones before, through :attr:`IntegerChannelConditionalParameters.context_halo`
        rows), even so that a band's checkerboard starts on an even row as the image's does."""
        halo = groups * self.integer.context_halo
        return halo + halo % 2

    def _check_bands(self, band_rows: int) -> None:
        if self.integer is None or self.hyper_halo() is None:
            raise ValueError("coding in bands needs integer parameters and a convolutional h_a")
        if band_rows % self.downsampling:  # for h_a's bands; even, as a checkerboard starts on an even row
            raise ValueError(f"bands must be a multiple of {self.downsampling} rows, got {band_rows}")

    def compress_in_bands(self, y_rows: Callable[[int, int], torch.Tensor], shape: tuple[int, int, int],
                          band_rows: int, pool: ThreadPoolExecutor | None = None) -> dict[str, Any]:
        """:meth:`compress` of one image whose ``y`` of ``shape`` is given by ``y_rows(first, last)``
        (``[1, C, last - first, W]``, asked for increasing rows, twice: once for ``z``, once to
        code ``y``), a band of ``band_rows`` rows at a time: every group of a band is coded by
        the walk over the groups of :meth:`compress` on the band and the rows its parameters
        depend on (:meth:`_band_halo`), and the band's rows of each group go to that group's
        :class:`~codec.latent_codecs.row_bands.BandedEncoder`. Exact integers: the same bytes,
        in the memory of a few bands."""
        self._check_bands(band_rows)
        height = shape[1]
        hyper_out = self.hyper.compress(self.hyper_latents_in_bands(y_rows, height, band_rows))
        symbols_z = hyper_out["symbols"]
        shapes = self.shapes(shape, symbols_z.shape[1])
        encoders = [latent.encoder_in_bands(shapes[latent.name]) for latent in self.latents]
        halo = self._band_halo(len(self.groups))
        feature_rows = Prefetcher(lambda start, stop: self.integer.feature_rows(
            symbols_z, max(0, start - halo), min(height, stop + halo)), height, band_rows, pool)
        for start in range(0, height, band_rows):
            stop = min(height, start + band_rows)
            first, last = max(0, start - halo), min(height, stop + halo)
            y = y_rows(first, last)
            coded: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

            def code(group: Group, y_group: torch.Tensor, p: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
                symbols = self.latents[group.transform].gaussian_conditional.quantize(y_group, "symbols", p[1])
                coded[group.transform] = symbols, p[0]
                return symbols, self.integer.fixed_point(symbols, p[2])

            features = feature_rows(start, stop).to(y.device)
            self._walk(y, self._integer_parameters(features), code)
            rows = slice(start - first, stop - first)
            for g, encoder in enumerate(encoders):
                symbols, indexes = coded[g]
                encoder.add(start, stop, symbols[0, :, rows].cpu().numpy(), indexes[0, :, rows].cpu().numpy())
        return {"strings": {**hyper_out["strings"], **{latent.name: [encoder.strings()]
                                                       for latent, encoder in zip(self.latents, encoders)}},
                "shapes": {**hyper_out["shapes"], **shapes}}

    def decompress_in_bands(self, strings: Strings, shapes: Shapes, band_rows: int,
                            pool: ThreadPoolExecutor | None = None) -> "GroupsInBands":
        """The ``y_hat`` of one image decoded a band of ``band_rows`` rows at a time, as asked
        for (:class:`GroupsInBands`): each group's stream has its
        :class:`~codec.latent_codecs.row_bands.BandedDecoder`, whose parameters of a band read
        the hyper features and the decoded context of the groups before on the band's rows
        plus :attr:`IntegerChannelConditionalParameters.context_halo` (decoding them as needed)."""
        self._check_bands(band_rows)
        self.check_strings(strings, shapes)  # before any parameter is computed
        symbols_z = self.hyper.decompress(strings, shapes)["symbols"]
        height = self.latent_shape(shapes)[1]
        halo = self._band_halo(1)
        decoders: list = []
        # The hyper features of a band (with its halo) are read by every group's parameters.
        feature_rows = Prefetcher(lambda start, stop: self.integer.feature_rows(
            symbols_z, max(0, start - halo), min(height, stop + halo)), height, band_rows, pool, uses=len(self.groups))

        def parameters_of(group: Group, latent: GaussianConditionalLatentCodec) -> Callable[[int, int], tuple[np.ndarray, ...]]:
            def parameters(start: int, stop: int) -> tuple[np.ndarray, ...]:
                first, last = max(0, start - halo), min(height, stop + halo)
                features = feature_rows(start, stop)
                p = self.integer.group_parameters(group.transform, group.slice, features,
                                                  _context(decoders, self, group, first, last))
                p = tuple(t[..., start - first: stop - first, :] for t in p)
                if self.checkerboard:
                    p = tuple(checkerboard_split(t)[1 if group.part == "rest" else 0] for t in p)
                indexes, _, means = (t[0].cpu().numpy() for t in p)
                kept = np.ascontiguousarray(narrowed(means))  # int32 or narrower for trained models
                # With reconstruction offsets, the indexes are kept too: y_hat needs them.
                return (indexes, kept) if latent.reconstruction is None else (indexes, kept, narrowed(indexes))
            return parameters

        decoders += [latent.decoder_in_bands(strings, shapes, band_rows, parameters_of(group, latent), _y_hat_of(latent))
                     for group, latent in zip(self.groups, self.latents)]
        return GroupsInBands(self, decoders, halo)

    def update(self, force: bool = False) -> bool:
        updated = self.hyper.update(force=force)
        for latent in {id(latent.gaussian_conditional): latent for latent in self.latents}.values():
            updated = latent.update(force=force) or updated
        return updated


def _y_hat(symbols: np.ndarray, means: np.ndarray) -> np.ndarray:
    """``y_hat`` from the decoded symbols and fixed-point means: the float32 means of
    :meth:`IntegerChannelConditionalParameters.group_parameters` plus the symbols, the same
    arithmetic as the whole-image decoder's."""
    return (means.astype(np.float64) / 2.0**ACTIVATION_BITS).astype(np.float32) + symbols.astype(np.float32)


def _y_hat_of(latent: GaussianConditionalLatentCodec) -> Callable[..., np.ndarray]:
    """The ``y_hat_of`` of a group's band decoder: :func:`_y_hat`, plus the reconstruction
    offsets of the kept table indexes when ``latent`` has them (after the symbols, as
    :meth:`GaussianConditionalLatentCodec.reconstruct` adds them)."""
    if latent.reconstruction is None:
        return _y_hat
    offsets = latent.reconstruction.of_numpy
    return lambda symbols, means, indexes: _y_hat(symbols, means) + offsets(symbols, indexes)


def _context(decoders: Sequence, codec: ChannelConditionalLatentCodec, group: Group, first: int,
             last: int) -> list[torch.Tensor]:
    """The context of ``group`` on rows ``first:last`` (even), as :meth:`ChannelConditionalLatentCodec._walk`
    gives it, from the fixed-point ``y_hat`` of the groups before decoded by ``decoders``."""
    def decoded(g: int) -> torch.Tensor:
        symbols, means = decoders[g].kept(first, last)[:2]
        return codec.integer.fixed_point(torch.from_numpy(symbols)[None], torch.from_numpy(means)[None])

    done = []
    for k in range(group.slice):
        parts = [decoded(g.transform) for g in codec.groups if g.slice == k]
        done.append(checkerboard_merge(*parts) if codec.checkerboard else parts[0])
    if group.part == "rest":
        anchors = decoded(group.transform - 1)
        done.append(checkerboard_merge(anchors, torch.zeros_like(anchors)))
    return done


class GroupsInBands:
    """The ``y_hat`` of one image from its groups' :class:`~codec.latent_codecs.row_bands.BandedDecoder`
    (:meth:`ChannelConditionalLatentCodec.decompress_in_bands`), with the interface of one:
    :meth:`rows` and :meth:`release`."""

    def __init__(self, codec: ChannelConditionalLatentCodec, decoders: Sequence, halo: int) -> None:
        self.codec, self.decoders, self.halo = codec, list(decoders), halo

    def rows(self, first: int, last: int) -> torch.Tensor:
        """``y_hat`` rows ``first:last`` of every channel, ``[1, C, last - first, W]`` float32."""
        even = first - first % 2  # a checkerboard's halves merge from an even row
        slices = []
        for k in range(self.codec.slices):
            parts = [self.decoders[g.transform].rows(even, last) for g in self.codec.groups if g.slice == k]
            slices.append(checkerboard_merge(*parts) if self.codec.checkerboard else parts[0])
        return torch.cat(slices, dim=1)[..., first - even:, :]

    def release(self, before: int) -> None:
        """Forget the decoded rows of the bands that end at or before row ``before``, less the
        rows the context of a later band may still read."""
        for decoder in self.decoders:
            decoder.release(before - before % 2 - self.halo)
