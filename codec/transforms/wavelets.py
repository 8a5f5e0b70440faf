"""2-D wavelet packet transform (analysis and synthesis) in torch.

Each level splits *every* band of the previous level into four (cA, cH, cV, cD), as in
WaLLoC: an input of C channels becomes ``C * 4**J`` channels at ``1 / 2**J`` resolution.
Two border rules keep the transform exactly invertible and the coefficient count equal to
the pixel count (H and W must be multiples of ``2**J``):

- ``periodic`` (PyWavelets' ``mode="periodization"``): the image wraps around, so its top
  rows are coupled to its bottom ones; the shipped weights use it.
- ``symmetric``: the image is mirrored about its first and last samples (whole-sample
  symmetric extension, as in JPEG 2000). The CDF 9/7 filters are symmetric, so each sub-band
  then extends symmetrically too (low-pass: mirrored about its first sample and about the
  midpoint after its last; high-pass: the reverse), and synthesis from the sub-bands so
  extended inverts analysis exactly. Every coefficient depends only on pixels within the
  filter's reach: a tile with a halo gives the same coefficients as the whole image.
  Interior coefficients are the same under both rules; only those near a border differ
  (within the filters' reach at each level).

The analysis of one level matches ``pywt.dwt2(x, wavelet, mode="periodization")`` (the
tests check this); synthesis is the adjoint of the analysis operator built from the
time-reversed reconstruction filters, which for these biorthogonal filters is its exact
inverse. Everything is batched, runs on any device and is differentiable.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

# Filter coefficients (decomposition low/high, reconstruction low/high), as published for
# the CDF 9/7 wavelet ("bior4.4") and Haar; identical to PyWavelets' tables.
_FILTERS: dict[str, tuple[tuple[float, ...], ...]] = {
    "bior4.4": (
        (0.0, 0.03782845550726404, -0.023849465019556843, -0.11062440441843718,
         0.37740285561283066, 0.8526986790088938, 0.37740285561283066,
         -0.11062440441843718, -0.023849465019556843, 0.03782845550726404),
        (-0.0, -0.06453888262869706, 0.04068941760916406, 0.41809227322161724,
         -0.7884856164055829, 0.41809227322161724, 0.04068941760916406,
         -0.06453888262869706, -0.0, 0.0),
        (0.0, -0.06453888262869706, -0.04068941760916406, 0.41809227322161724,
         0.7884856164055829, 0.41809227322161724, -0.04068941760916406,
         -0.06453888262869706, 0.0, 0.0),
        (0.0, -0.03782845550726404, -0.023849465019556843, 0.11062440441843718,
         0.37740285561283066, -0.8526986790088938, 0.37740285561283066,
         0.11062440441843718, -0.023849465019556843, -0.03782845550726404),
    ),
    "haar": (
        (0.7071067811865476, 0.7071067811865476),
        (-0.7071067811865476, 0.7071067811865476),
        (0.7071067811865476, 0.7071067811865476),
        (0.7071067811865476, -0.7071067811865476),
    ),
}

WAVELETS = tuple(_FILTERS)
#: Border rules of :class:`WaveletPacket2D` (see the module docstring).
BOUNDARIES = ("periodic", "symmetric")


def _polyphase(kernels: torch.Tensor) -> torch.Tensor:
    """[4, 1, L, L] kernels -> [4, 4, L/2, L/2]: input channel ``2 * row_phase + col_phase``
    holds the taps that meet that phase of the input (pixel_unshuffle's channel order)."""
    half = kernels.shape[-1] // 2
    return kernels.reshape(4, half, 2, half, 2).permute(0, 2, 4, 1, 3).reshape(4, 4, half, half)


def _outer_kernels(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """The four separable 2-D kernels as a [4, 1, L, L] weight, in PyWavelets' order:
    approximation, horizontal detail (high-pass along H), vertical detail, diagonal."""
    rows = torch.stack([lo, hi, lo, hi])  # filter along H
    cols = torch.stack([lo, lo, hi, hi])  # filter along W
    return (rows[:, :, None] * cols[:, None, :]).unsqueeze(1)


class WaveletPacket2D(nn.Module):
    """J-level 2-D wavelet packet transform with periodic or symmetric borders.

    ``analysis``: [B, C, H, W] -> [B, C * 4**J, H / 2**J, W / 2**J];
    ``synthesis`` is its exact inverse. Channel ``4 * c + k`` of a level holds sub-band
    ``k`` (cA, cH, cV, cD in PyWavelets' naming) of channel ``c`` of the level before.
    """

    def __init__(self, wavelet: str = "bior4.4", levels: int = 3, boundary: str = "periodic") -> None:
        super().__init__()
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
        if boundary == "symmetric" and wavelet != "bior4.4":
            raise ValueError("the symmetric boundary needs the symmetric CDF 9/7 filters (bior4.4)")
        self.boundary = boundary
        if wavelet not in _FILTERS:
            raise ValueError(f"wavelet must be one of {WAVELETS}, got {wavelet!r}")
        if not isinstance(levels, int) or levels < 0:
            raise ValueError(f"levels must be a non-negative int, got {levels!r}")
        self.wavelet = wavelet
        self.levels = levels
        dec_lo, dec_hi, rec_lo, rec_hi = (torch.tensor(f, dtype=torch.float64) for f in _FILTERS[wavelet])
        length = dec_lo.numel()
        # out[n] = sum_k f[k] x[(2n + L/2 - k) mod N]: a cross-correlation with the flipped
        # filter over the signal with `left` periodic samples in front, at stride 2.
        left = length - 1 - length // 2
        if length % 2 or left % 2:
            raise ValueError(f"wavelet {wavelet!r}: polyphase form needs an even filter length and offset")
        # Polyphase form: split the padded signal into its four 2x2 phases (pixel_unshuffle),
        # and each 2-D kernel likewise; a stride-2 correlation becomes a stride-1 one of the
        # phases, 4 channels to 4 channels with L/2 x L/2 taps. It is the same arithmetic,
        # about 4x faster than a strided 1-channel convolution (and than the transposed one
        # of synthesis), and the periodic padding moves to the half-resolution phases.
        self.pad_before = left // 2
        self.pad_after = length // 2 - 1 - self.pad_before
        self.register_buffer("analysis_kernel", _polyphase(_outer_kernels(dec_lo.flip(0), dec_hi.flip(0))).float(),
                             persistent=False)
        # Synthesis is the adjoint of analysis with the reversed reconstruction filters (for
        # these biorthogonal filters its exact inverse): in polyphase form a correlation of
        # the periodically padded sub-bands with the transposed, flipped phase kernels.
        synthesis = _polyphase(_outer_kernels(rec_lo, rec_hi)).transpose(0, 1).flip(-2, -1)
        self.register_buffer("synthesis_kernel", synthesis.contiguous().float(), persistent=False)

    @property
    def factor(self) -> int:
        """Spatial down-sampling factor 2**J; H and W must be multiples of it."""
        return 2 ** self.levels

    def _check(self, x: torch.Tensor, name: str) -> None:
        if x.dim() != 4:
            raise ValueError(f"{name} must be a 4-D tensor [B, C, H, W], got shape {tuple(x.shape)}")

    def _analysis_level(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"height and width must be multiples of {self.factor}, got {h}x{w}")
        x = x.reshape(b * c, 1, h, w)
        if self.boundary == "periodic":
            padded = _periodic_pad(F.pixel_unshuffle(x, 2), self.pad_before, self.pad_after)
        else:  # one expression: the row-extended copy is freed as soon as it is used
            before, after = 2 * self.pad_before, 2 * self.pad_after
            padded = F.pixel_unshuffle(_extend(_extend(x, -2, before, after, _whole_sample_symmetric), -1,
                                               before, after, _whole_sample_symmetric), 2)
        y = F.conv2d(padded, self.analysis_kernel.to(x.dtype))
        return y.reshape(b, c * 4, h // 2, w // 2)

    def _synthesis_level(self, y: torch.Tensor) -> torch.Tensor:
        b, c4, h2, w2 = y.shape
        if c4 % 4:
            raise ValueError(f"channel count must be a multiple of 4 per level, got {c4}")
        c = c4 // 4
        y = y.reshape(b * c, 4, h2, w2)
        if self.boundary == "periodic":
            padded = _periodic_pad(y, self.pad_before, self.pad_after)
        else:
            padded = self._symmetric_subband_pad(y)
        x = F.pixel_shuffle(F.conv2d(padded, self.synthesis_kernel.to(y.dtype)), 2)
        return x.reshape(b, c, 2 * h2, 2 * w2)

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        """Forward transform: [B, C, H, W] -> [B, C * 4**J, H / 2**J, W / 2**J]."""
        self._check(x, "x")
        if x.shape[-2] % self.factor or x.shape[-1] % self.factor:
            raise ValueError(f"height and width must be multiples of {self.factor}, got {x.shape[-2]}x{x.shape[-1]}")
        if torch.is_grad_enabled() or self.levels == 0:
            for _ in range(self.levels):
                x = self._analysis_level(x)
            return x
        return self._analysis_tree(x)

    def _analysis_tree(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`analysis` without gradients, in the memory of a fraction of it: every channel
        of every level is transformed on its own (the packet tree depth first), each result
        written into its channels of the output. The levels' convolutions then run on batches
        of one channel instead of all, the same arithmetic on each channel (the same floats,
        bit for bit: ``tests/test_wavelets.py``), and only one channel's first level is held
        at a time instead of every channel's."""
        b, c, h, w = x.shape
        f, leaves = self.factor, 4 ** self.levels
        out = x.new_empty(b, c * leaves, h // f, w // f)
        for channel in range(c):
            self._analysis_node(x[:, channel:channel + 1], 0, out, channel * leaves)
        return out

    def _analysis_node(self, node: torch.Tensor, level: int, out: torch.Tensor, first: int) -> None:
        """The leaves of ``node`` (``[B, 1, h, w]``, an input of level ``level``) into
        ``out``'s channels from ``first`` on. (A method, not a recursive closure: a closure
        would hold ``out`` in a reference cycle until the garbage collector runs.)"""
        if level == self.levels:
            out[:, first:first + 1] = node
            return
        children, span = self._analysis_level(node), 4 ** (self.levels - level - 1)
        for k in range(4):
            self._analysis_node(children[:, k:k + 1], level + 1, out, first + k * span)

    def synthesis(self, y: torch.Tensor) -> torch.Tensor:
        """Inverse transform: [B, C * 4**J, h, w] -> [B, C, h * 2**J, w * 2**J]."""
        self._check(y, "y")
        if y.shape[1] % (4 ** self.levels):
            raise ValueError(f"channel count must be a multiple of {4 ** self.levels}, got {y.shape[1]}")
        if torch.is_grad_enabled() or self.levels == 0:
            for _ in range(self.levels):
                y = self._synthesis_level(y)
            return y
        return self._synthesis_tree(y)

    def _synthesis_tree(self, y: torch.Tensor) -> torch.Tensor:
        """:meth:`synthesis` without gradients, one output channel's packet tree at a time
        (depth first), as :meth:`_analysis_tree`: the same floats, bit for bit."""
        b, c4, h, w = y.shape
        f, leaves = self.factor, 4 ** self.levels
        out = y.new_empty(b, c4 // leaves, h * f, w * f)
        for channel in range(c4 // leaves):
            out[:, channel:channel + 1] = self._synthesis_node(y, 0, channel * leaves)
        return out

    def _synthesis_node(self, y: torch.Tensor, level: int, first: int) -> torch.Tensor:
        """The ``[B, 1, ...]`` node that synthesis level ``level`` (counted from the output)
        makes from the leaves of ``y`` from channel ``first`` on."""
        span = 4 ** (self.levels - level - 1)
        if span == 1:
            children = y[:, first:first + 4]
        else:
            b, _, h, w = y.shape
            size = 2 ** (self.levels - level - 1)
            children = y.new_empty(b, 4, h * size, w * size)
            for k in range(4):
                children[:, k:k + 1] = self._synthesis_node(y, level + 1, first + k * span)
        return self._synthesis_level(children)

    forward = analysis

    def _symmetric_subband_pad(self, y: torch.Tensor) -> torch.Tensor:
        """Pad the four sub-bands [cA, cH, cV, cD] of a level as the analysis of the mirrored
        image would have continued them: along each axis, low-pass bands by one rule and
        high-pass bands by the other (cH is high-pass along H, cV along W)."""
        before, after = self.pad_before, self.pad_after
        extensions = (_low_pass_extension, _high_pass_extension)
        bands = [_extend(_extend(y[:, k:k + 1], -2, before, after, extensions[k % 2]), -1, before, after,
                         extensions[k // 2]) for k in range(4)]
        return torch.cat(bands, dim=1)


def _extend(x: torch.Tensor, dim: int, before: int, after: int,
            extension: Callable[[torch.Tensor, int], torch.Tensor]) -> torch.Tensor:
    """``x`` with ``before`` samples in front and ``after`` behind along ``dim``, sample ``i``
    (outside ``range(size)``) taken from ``extension(i, size)``: what ``index_select`` with
    the whole index map gives (the extensions map the inside to itself), but the inside is
    copied as one block, several times faster than a gather along the last dim."""
    size = x.shape[dim]
    head = extension(torch.arange(-before, 0, device=x.device), size)
    tail = extension(torch.arange(size, size + after, device=x.device), size)
    return torch.cat([x.index_select(dim, head), x, x.index_select(dim, tail)], dim)


def _periodic(index: torch.Tensor, size: int) -> torch.Tensor:
    """Indexes into ``range(size)`` of the signal repeated periodically."""
    return index % size


def _whole_sample_symmetric(index: torch.Tensor, size: int) -> torch.Tensor:
    """Indexes into ``range(size)`` of the signal mirrored about its first and last samples
    (period ``2 * size - 2``; any index, however far out)."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * size - 2
    index = index % period
    return torch.where(index < size, index, period - index)


def _low_pass_extension(index: torch.Tensor, size: int) -> torch.Tensor:
    """Where the low-pass band of a whole-sample symmetric signal continues: mirrored about
    its first sample and about the midpoint after its last (period ``2 * size - 1``)."""
    period = 2 * size - 1
    index = index % period
    return torch.where(index < size, index, period - index)


def _high_pass_extension(index: torch.Tensor, size: int) -> torch.Tensor:
    """Where the high-pass band continues: mirrored about the midpoint before its first
    sample and about its last sample (period ``2 * size - 1``)."""
    period = 2 * size - 1
    index = index % period
    return torch.where(index < size, index, 2 * (size - 1) - index)


def _periodic_pad(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Periodic padding of the last two dims; handles pads longer than the signal."""
    if left == 0 and right == 0:
        return x
    return _extend(_extend(x, -2, left, right, _periodic), -1, left, right, _periodic)

