"""Integer entropy parameters: the table index and mean of every latent, computed exactly.

A float hyper-synthesis gives scales whose last bits depend on the machine, the thread count,
the BLAS and the device; a scale near the edge of two Gaussian tables then picks another table
at the decoder than at the encoder and the range decoder reads garbage. Following Ballé,
Johnston & Minnen (2019), "Integer networks for data compression with latent-variable models",
this module turns a trained hyper-synthesis (an ``nn.Sequential`` of ``Conv2d`` /
``ConvTranspose2d`` layers with ``LeakyReLU`` between them) into an integer network whose
output is a pure function of the decoded hyper-latent symbols, the same on every machine.

The network (all constants below are part of the file format; see docs/bitstream.md):

* input: ``x0 = clamp(s * 2^A + round(median * 2^A), +-L)``, ``s`` the int32 symbols of
  the hyper-latents ``z``, ``median`` the bottleneck's per-channel medians: ``z_hat`` in fixed
  point with ``A = ACTIVATION_BITS`` fractional bits, clamped to ``L = 2^(A + RANGE_BITS)``;
* each layer: weights ``W = round(w * 2^F)`` and biases ``b = round(bias * 2^(F + A))``, with
  ``F`` the largest integer ``<= WEIGHT_BITS`` for which the accumulation bound below holds
  (derived from the float32 weights in float64: a power-of-two scaling and a round-half-even,
  both exact, so every machine derives the same integers); the accumulator
  ``acc = conv(W, x) + b`` is exact (below);
* between layers: ``x = clamp(leaky((acc + 2^(F-1)) >> F), +-L)`` with
  ``leaky(v) = v if v >= 0 else (v * round(slope * 2^S)) >> S`` with ``S = SLOPE_BITS``
  (``>>`` an arithmetic shift: floor division by a power of two), all in int64;
* output (``2C`` channels: scales, then means, each with ``K = F + A`` fractional bits):
  the table index of a latent is ``max(c0, #{i < N-1 : T_i < acc})`` with the integer
  thresholds ``T_i = floor(scale_table[i] * 2^K)`` and ``c0`` the number of table entries
  (last excluded) below the scale bound: exactly compressai's ``build_indexes`` of the
  lower-bounded scale ``acc / 2^K`` (``t < acc/2^K <=> floor(t * 2^K) < acc`` for an integer
  ``acc``), with no float ``exp`` or comparison at decode time. The mean is
  ``((acc + 2^(F-1)) >> F) / 2^A``: a dyadic rational, exact in float32 while ``|mean| < 2^(24-A)``.

Why the convolutions are exact. Every convolution is computed as one matrix product per kernel
tap (``W[:, :, ky, kx] @ x`` on a shifted or, for a transposed convolution, strided window) in
float64, accumulated in float64, never by a transform (FFT, Winograd) algorithm, which would
round. All operands are integers. For an output channel ``o`` the sum of the magnitudes of all
its terms is at most ``B_o = L * sum |W[o]| + |b[o]|`` (the sum runs over the whole kernel and
every input channel: a transposed convolution's output sums a subset of those terms). ``F`` is
chosen so that ``max_o B_o <= 2^52``; then every partial sum, in whatever order a BLAS, a thread
split or a GPU kernel adds the terms (fused multiply-adds included), is an integer below 2^53
in magnitude, so every float64 operation on the way is exact and the result is the exact
integer sum; the rest of the arithmetic is int64. With the shipped walloc the chosen ``F``
are 20, 20 and 19, and the bounds 2^50.9, 2^51.9 and 2^52.0 (``IntegerNetwork.bounds``, tested;
weights 3579fb36).
Against the float ``h_s`` the means differ by at most ~3e-4 on Kodak and about 0.02 % of the
latents get a neighbouring table index (docs/bitstream.md has the measured rate cost).

Channel-conditional models (:class:`IntegerChannelConditionalParameters`) chain such networks:
the hyper-synthesis output is rounded to ``A`` fractional bits and clamped (the hyper
features), each slice transform reads those features and the earlier slices' ``y_hat`` in the
same fixed point (``symbol * 2^A + mean``, clamped: every input within ``+-L``, as the bound
assumes), and a slice's scale and mean are the feature plus the transform's output, both at
``A`` bits; its table index compares that scale with ``floor(scale_table[i] * 2^A)``. Integers
all the way, so the chain is as exact as one network.
"""
from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass

import torch
from torch import nn

#: Fractional bits of the network's activations (and of its input and the means).
ACTIVATION_BITS = 16
#: Activations are clamped to +-2^(ACTIVATION_BITS + RANGE_BITS) (+-1024 in real units).
RANGE_BITS = 10
#: Most fractional bits of the integer weights (fewer only if the accumulation bound needs it).
WEIGHT_BITS = 20
#: Fractional bits of the LeakyReLU slope.
SLOPE_BITS = 30
#: Largest accumulator bound allowed: partial sums stay below 2^53 with a rounding term to spare.
MAX_BOUND = 2**52


@dataclass(frozen=True)
class IntegerLayer:
    """One convolution of an :class:`IntegerNetwork`, with the activation that follows it."""

    #: Integer weights in float64, in the float layer's layout (``[out, in, k, k]`` for a
    #: convolution, ``[in, out, k, k]`` for a transposed one).
    weight: torch.Tensor
    #: Integer biases in int64, ``[out]``, with ``weight_bits + ACTIVATION_BITS`` fractional bits.
    bias: torch.Tensor
    weight_bits: int
    transposed: bool
    stride: int
    padding: int
    output_padding: int
    #: LeakyReLU slope in units of 2^-SLOPE_BITS after this layer; None after the last layer.
    slope: int | None
    #: ``max_o B_o`` of the module docstring: the largest possible magnitude of a partial sum.
    bound: int


def _conv_exact(x: torch.Tensor, layer: IntegerLayer) -> torch.Tensor:
    """``acc = conv(W, x) + b`` of int64 ``x`` [B, C, H, W], exactly: a float64 matrix product per tap.

    Every product and partial sum is an integer below 2^53 (the layer's ``bound``), so the
    float64 sums are exact in any order: the taps' products go through one buffer and the
    padding is made by the conversion to float64, to hold fewer tensors of the band's size."""
    w = layer.weight.to(x.device)
    batch, channels, height, width = x.shape
    k, s, p = w.shape[-1], layer.stride, layer.padding
    if layer.transposed:
        xf = x.to(torch.float64)
        full_h, full_w = (height - 1) * s + k + layer.output_padding, (width - 1) * s + k + layer.output_padding
        out = xf.new_zeros(batch, w.shape[1], full_h, full_w)
        flat = xf.reshape(batch, channels, height * width)
        tap = xf.new_empty(batch, w.shape[1], height * width)
        for ky in range(k):
            for kx in range(k):
                torch.matmul(w[:, :, ky, kx].T.contiguous(), flat, out=tap)
                out[:, :, ky:ky + s * (height - 1) + 1:s, kx:kx + s * (width - 1) + 1:s] += \
                    tap.view(batch, -1, height, width)
        del xf, flat, tap
        out_h, out_w = (height - 1) * s - 2 * p + k + layer.output_padding, (width - 1) * s - 2 * p + k + layer.output_padding
        out = out[:, :, p:p + out_h, p:p + out_w]
    else:
        out_h, out_w = (height + 2 * p - k) // s + 1, (width + 2 * p - k) // s + 1
        padded = x.new_zeros(batch, channels, height + 2 * p, width + 2 * p, dtype=torch.float64)
        padded[:, :, p:p + height, p:p + width] = x
        out = padded.new_zeros(batch, w.shape[0], out_h * out_w)
        window = padded.new_empty(batch, channels, out_h, out_w)
        tap = padded.new_empty(batch, w.shape[0], out_h * out_w)
        for ky in range(k):
            for kx in range(k):
                window.copy_(padded[:, :, ky:ky + s * (out_h - 1) + 1:s, kx:kx + s * (out_w - 1) + 1:s])
                torch.matmul(w[:, :, ky, kx].contiguous(), window.view(batch, channels, out_h * out_w), out=tap)
                out += tap
        del padded, window, tap
        out = out.view(batch, -1, out_h, out_w)
    result = out.to(torch.int64)
    del out
    result += layer.bias.to(x.device)[None, :, None, None]
    return result


def _round_shift(acc: torch.Tensor, bits: int) -> torch.Tensor:
    """``acc / 2^bits`` rounded half up, in int64."""
    return (acc + (1 << (bits - 1))) >> bits if bits > 0 else acc << -bits


class IntegerNetwork:
    """A float ``nn.Sequential`` of (transposed) convolutions and LeakyReLUs as an exact integer network.

    ``__call__`` maps int64 activations with :data:`ACTIVATION_BITS` fractional bits to the
    int64 accumulators of the last layer (``last_bits`` fractional bits); see the module
    docstring for the arithmetic and why it is exact. ValueError for a layer of another kind.
    """

    def __init__(self, net: nn.Sequential) -> None:
        modules = list(net)
        layers: list[IntegerLayer] = []
        limit = 1 << (ACTIVATION_BITS + RANGE_BITS)
        for i, module in enumerate(modules):
            if isinstance(module, nn.LeakyReLU) and i and isinstance(modules[i - 1], (nn.Conv2d, nn.ConvTranspose2d)):
                continue  # folded into the layer before
            if not isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) or module.groups != 1 \
                    or module.dilation not in ((1, 1), 1) or module.bias is None or module.padding_mode != "zeros" \
                    or len(set(module.kernel_size)) != 1 or len(set(module.stride)) != 1 or len(set(module.padding)) != 1:
                raise ValueError(f"layer {i} ({type(module).__name__}) has no integer form")
            following = modules[i + 1] if i + 1 < len(modules) else None
            slope = None
            if isinstance(following, nn.LeakyReLU):
                slope = round(following.negative_slope * 2**SLOPE_BITS)
            elif following is not None:
                raise ValueError(f"layer {i + 1} ({type(following).__name__}) has no integer form")
            transposed = isinstance(module, nn.ConvTranspose2d)
            w = module.weight.detach().to("cpu", torch.float64)
            b = module.bias.detach().to("cpu", torch.float64)
            # Per output channel: the sum of |w| over its whole kernel and every input channel.
            for bits in range(WEIGHT_BITS, -1, -1):
                weight = torch.round(w * 2.0**bits)
                bias = torch.round(b * 2.0**(bits + ACTIVATION_BITS))
                sums = weight.abs().sum(dim=(0, 2, 3) if transposed else (1, 2, 3))
                bound = int((sums * limit + bias.abs()).max())
                if bound <= MAX_BOUND:
                    break
            else:
                raise ValueError(f"layer {i}: weights too large for an exact integer form")
            output_padding = module.output_padding[0] if transposed else 0
            layers.append(IntegerLayer(weight, bias.to(torch.int64), bits, transposed, module.stride[0],
                                       module.padding[0], output_padding, slope, bound))
        if not layers or layers[-1].slope is not None:
            raise ValueError("an integer network must end with a convolution")
        self.layers = tuple(layers)
        self.limit = limit

    @property
    def last_bits(self) -> int:
        """Fractional bits of the output accumulators: the last layer's ``F + A``."""
        return self.layers[-1].weight_bits + ACTIVATION_BITS

    @property
    def bounds(self) -> tuple[int, ...]:
        """Each layer's bound on the magnitude of any partial sum (each at most :data:`MAX_BOUND`)."""
        return tuple(layer.bound for layer in self.layers)

    @property
    def upsampling(self) -> int:
        """Output rows (and columns) per input row: the transposed layers' strides."""
        return math.prod(layer.stride for layer in self.layers if layer.transposed)

    @property
    def halo(self) -> int:
        """Input rows beyond a band of output rows that those outputs may depend on (an upper
        bound): each layer reaches ``kernel / 2`` of its input rows, which are ``up`` times
        finer than the network's input rows after the transposed layers before it."""
        rows, up = 0, 1
        for layer in self.layers:
            rows += -(-layer.weight.shape[-1] // (2 * up))
            if layer.transposed:
                up *= layer.stride
        return rows

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            acc = _conv_exact(x, layer)
            del x
            if layer.slope is None:
                return acc
            # _round_shift and the LeakyReLU in place: with 0 <= slope < 2^SLOPE_BITS,
            # (x * slope) >> SLOPE_BITS is at most x for x >= 0 and at least x for x < 0
            # (a floor of a value above x), so the activation is their maximum.
            bits = layer.weight_bits
            x = acc.add_(1 << (bits - 1)).bitwise_right_shift_(bits) if bits > 0 else acc.bitwise_left_shift_(-bits)
            del acc
            if not 0 <= layer.slope < 1 << SLOPE_BITS:
                x = torch.where(x >= 0, x, (x * layer.slope) >> SLOPE_BITS)
            else:
                torch.maximum(x, (x * layer.slope).bitwise_right_shift_(SLOPE_BITS), out=x)
            x.clamp_(-self.limit, self.limit)
        raise AssertionError("unreachable")


def _hyper_synthesis(network: IntegerNetwork, medians: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
    """The output accumulators of an integer hyper-synthesis on the int32 symbols of ``z``: its
    input is ``z_hat = symbol + median`` in fixed point, clamped to the activation range."""
    x = symbols.to(torch.int64) * (1 << ACTIVATION_BITS) + medians.to(symbols.device)[None, :, None, None]
    return network(x.clamp(-network.limit, network.limit))


def table_indexes(scales: torch.Tensor, thresholds: torch.Tensor, first_index: int) -> torch.Tensor:
    """int32 table index of every fixed-point scale: ``max(first_index, #{i : thresholds[i] < scale})``.

    Exact integers (below 2^53) in float64 compared with exact integer thresholds: an exact count."""
    counts = torch.bucketize(scales.to(torch.float64), thresholds.to(scales.device))
    return counts.clamp_(min=first_index).to(torch.int32)


def scale_thresholds(scale_table: torch.Tensor, scale_bound: float, bits: int) -> tuple[torch.Tensor, int]:
    """(integer thresholds ``floor(scale_table[i] * 2^bits)`` for all but the last table entry,
    in float64; the number of those entries below ``scale_bound``): what :func:`table_indexes`
    compares a scale with ``bits`` fractional bits against, as compressai's ``build_indexes``
    does with the lower-bounded float scale."""
    table = scale_table.detach().to("cpu", torch.float64).reshape(-1)[:-1]
    if float(table.max()) * 2.0**bits >= MAX_BOUND:
        raise ValueError("scale table too large for the integer thresholds")
    first_index = int((table < torch.tensor(float(scale_bound), dtype=torch.float64)).sum())
    return torch.floor(table * 2.0**bits), first_index


def in_bands(compute, inputs: tuple[torch.Tensor, ...], halo: int, up: int, max_outputs: int, dim: int = -2
             ) -> tuple[torch.Tensor, ...]:
    """``compute(*inputs)`` (tensors whose last two axes are rows and columns, each output ``up``
    times finer than the inputs) in bands of input rows (``dim=-2``; columns: ``dim=-1``), each
    computed with ``halo`` more rows on either side and cut to its own rows: the memory of one
    band's intermediates instead of the whole image's. Exact for a ``compute`` whose outputs
    depend on at most ``halo`` input rows each side (integer arithmetic: the same bits
    whatever the bands)."""
    size, other = inputs[0].shape[dim], inputs[0].shape[-1 if dim == -2 else -2]
    band = max(1, max_outputs // (up**2 * max(1, other)))
    if size <= band + 2 * halo:
        return compute(*inputs)
    parts = []
    for start in range(0, size, band):
        stop = min(size, start + band)
        first, last = max(0, start - halo), min(size, stop + halo)
        outputs = compute(*(t.narrow(dim, first, last - first) for t in inputs))
        parts.append([o.narrow(dim, (start - first) * up, (stop - start) * up) for o in outputs])
    return tuple(torch.cat(column, dim=dim) for column in zip(*parts))


def rows_of(compute, network: IntegerNetwork, symbols: torch.Tensor, start: int, stop: int, max_outputs: int,
            chunk_outputs: int | None = None) -> tuple[torch.Tensor, ...]:
    """Rows ``start:stop`` of ``compute(symbols)`` (tensors at ``network``'s output resolution,
    ``compute`` ending with ``network``), computed from the rows of ``symbols`` they depend on
    (plus ``network.halo``) only, and in chunks of columns with the same halo: the same
    integers, in the memory of about ``chunk_outputs`` output positions at a time (default
    a quarter of ``max_outputs``)."""
    up, halo = network.upsampling, network.halo
    first, last = max(0, start // up - halo), min(symbols.shape[-2], -(-stop // up) + halo)
    offset = start - first * up

    def own_rows(z_rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(o[..., offset:offset + stop - start, :] for o in compute(z_rows))

    # Columns in chunks too: the int64 work holds several KB per output position.
    chunk = max_outputs // 4 if chunk_outputs is None else chunk_outputs
    return in_bands(own_rows, (symbols[..., first:last, :],), halo, up, chunk, dim=-1)


class IntegerGaussianParameters:
    """Exact table indexes and means of a Gaussian conditional from the hyper-latent symbols.

    Built from a hyper-synthesis ``h_s`` (output: scales, then means), the entropy bottleneck
    of the hyper-latents (its medians) and the Gaussian conditional (its scale table and
    bound). :meth:`__call__` maps the int32 symbols of ``z`` to ``(indexes, means)``; see the
    module docstring.
    """

    def __init__(self, h_s: nn.Sequential, medians: torch.Tensor, scale_table: torch.Tensor, scale_bound: float) -> None:
        self.network = IntegerNetwork(h_s)
        self.medians = fixed_point_medians(medians)
        self.thresholds, self.first_index = scale_thresholds(scale_table, scale_bound, self.network.last_bits)

    #: Output positions (rows x columns of ``y``) a band of :meth:`__call__` computes at once.
    BAND_OUTPUTS = 1 << 17

    @property
    def upsampling(self) -> int:
        """Rows (and columns) of ``y`` per row of ``z``: the transposed layers' strides."""
        return self.network.upsampling

    @property
    def halo(self) -> int:
        """Rows of ``z`` beyond a band that its outputs may depend on (an upper bound)."""
        return self.network.halo

    def __call__(self, symbols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(indexes int32, means float32)`` of ``y`` from the int32 symbols ``[B, Cz, h, w]`` of ``z``.

        Over many rows the work goes in bands of ``z`` rows with a :attr:`halo` each side
        (:func:`in_bands`), which bounds the memory of the int64 accumulators; the arithmetic
        is exact, so the result is the same, bit for bit, whatever the bands."""
        return in_bands(self._parameters, (symbols,), self.halo, self.upsampling, self.BAND_OUTPUTS)

    def rows(self, symbols: torch.Tensor, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``start:stop`` of ``y`` of :meth:`__call__`, computed from the rows of ``z`` they
        depend on (plus the :attr:`halo`) only (:func:`rows_of`): the same integers, in the
        memory of those rows."""
        return rows_of(self._parameters, self.network, symbols, start, stop, self.BAND_OUTPUTS)

    def _parameters(self, symbols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        net = self.network
        acc = _hyper_synthesis(net, self.medians, symbols)
        scales, means = acc.chunk(2, dim=1)
        indexes = table_indexes(scales, self.thresholds, self.first_index)
        means = _round_shift(means, net.layers[-1].weight_bits).to(torch.float64) / 2.0**ACTIVATION_BITS
        return indexes, means.to(torch.float32)


class IntegerChannelConditionalParameters:
    """Exact table indexes and means of ``y``'s groups (channel slices, checkerboard halves;
    :mod:`codec.latent_codecs.channel_conditional`), from the hyper-latent symbols and the
    groups decoded before.

    * hyper features: ``h_s`` as an :class:`IntegerNetwork` on the symbols of ``z`` (as in
      :class:`IntegerGaussianParameters`), its output rounded to :data:`ACTIVATION_BITS`
      fractional bits and clamped to the activation range: ``2C`` channels, the scales then
      the means of all of ``y``;
    * a group of slice ``k`` (``n`` channels): its transform, an :class:`IntegerNetwork` at
      ``y``'s resolution, sees the hyper features and the fixed-point ``y_hat`` decoded before
      (``symbol * 2^A + mean``, clamped; zero where not decoded yet) and adds a correction
      (rounded to ``A`` bits) to the hyper features' scales and means of its channels;
    * the table index of a scale with ``A`` fractional bits is the count of the thresholds
      ``floor(scale_table[i] * 2^A)`` below it (:func:`table_indexes`), the mean is that
      integer over ``2^A``.

    Every step is integer arithmetic (exact convolutions, shifts, additions, clamps), so the
    encoder and every decoder derive the same indexes and the same ``y_hat`` bits.
    """

    #: Output positions (rows x columns of ``y``) a band computes at once.
    BAND_OUTPUTS = 1 << 17
    #: Output positions of the chunks of columns that a band's int64 work goes in: the hyper
    #: features (96 channels from the hyper-synthesis) and each group's transform (up to 144
    #: input channels). Both run at once on two threads while a band is coded; at 1/4 and 1/8
    #: of a band, a 20000 x 1100 panorama's two-thread encode peaked at 0.84 GB, over its
    #: memory bound of 0.80 GB; at 1/16 and 1/16 it peaks at 0.76-0.78 GB (docs/large-images.md,
    #: "Tiles"). Smaller group chunks (1/32) raised the decoder's peak by 0.04-0.07 GB.
    FEATURE_CHUNK_OUTPUTS = BAND_OUTPUTS // 16
    GROUP_CHUNK_OUTPUTS = BAND_OUTPUTS // 16

    def __init__(self, h_s: nn.Sequential, transforms: nn.ModuleList, medians: torch.Tensor,
                 scale_table: torch.Tensor, scale_bound: float) -> None:
        self.hyper = IntegerNetwork(h_s)
        self.slices = tuple(IntegerNetwork(t) for t in transforms)
        if any(layer.transposed or layer.stride != 1 or layer.padding != layer.weight.shape[-1] // 2
               for net in self.slices for layer in net.layers):
            raise ValueError("context transforms must keep the latent's resolution")
        self.medians = fixed_point_medians(medians)
        self.thresholds, self.first_index = scale_thresholds(scale_table, scale_bound, ACTIVATION_BITS)
        self.limit = self.hyper.limit

    def features(self, symbols: torch.Tensor) -> torch.Tensor:
        """int32 hyper features ``[B, 2C, H, W]`` (``A`` fractional bits) from the int32 symbols of ``z``."""
        return in_bands(self._features, (symbols,), self.hyper.halo, self.hyper.upsampling, self.BAND_OUTPUTS)[0]

    def feature_rows(self, symbols: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Rows ``start:stop`` of :meth:`features`, from the rows of ``z`` they depend on only
        (:func:`rows_of`): the same integers, in the memory of those rows."""
        return rows_of(self._features, self.hyper, symbols, start, stop, self.BAND_OUTPUTS, self.FEATURE_CHUNK_OUTPUTS)[0]

    @property
    def context_halo(self) -> int:
        """Rows of ``y`` beyond a band of rows that a group's parameters depend on, through its
        transform, in the hyper features and the context: the most of any transform's sum of
        its convolutions' reaches (``kernel // 2``; stride 1, zero padding of ``kernel // 2``)."""
        return max(sum(layer.weight.shape[-1] // 2 for layer in net.layers) for net in self.slices)

    def _features(self, symbols: torch.Tensor) -> tuple[torch.Tensor]:
        acc = _hyper_synthesis(self.hyper, self.medians, symbols)
        return (_round_shift(acc, self.hyper.layers[-1].weight_bits).clamp(-self.limit, self.limit).to(torch.int32),)

    def group_parameters(self, g: int, k: int, features: torch.Tensor, context: list[torch.Tensor]
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(indexes int32, means float32, fixed-point means int64)`` of channel slice ``k`` at
        every position, by transform ``g``, from the hyper features and the context (the
        fixed-point ``y_hat`` of what was decoded before, :meth:`fixed_point`; zero where not yet)."""
        halo = self.slices[g].halo
        # Bands of rows, each in chunks of columns: the int64 work holds ~1 KB per position and input channel.
        columns = lambda *t: in_bands(lambda *u: self._group(g, k, *u), t, halo, 1, self.GROUP_CHUNK_OUTPUTS, dim=-1)  # noqa: E731
        return in_bands(columns, (features, *context), halo, 1, self.BAND_OUTPUTS)

    def _group(self, g: int, k: int, features: torch.Tensor, *context: torch.Tensor):
        net = self.slices[g]
        x = torch.cat([features, *context], dim=1).to(torch.int64)
        delta = _round_shift(net(x), net.layers[-1].weight_bits)
        n, channels = delta.shape[1] // 2, features.shape[1] // 2
        scales = features[:, k * n:(k + 1) * n].to(torch.int64) + delta[:, :n]
        means = features[:, channels + k * n:channels + (k + 1) * n].to(torch.int64) + delta[:, n:]
        indexes = table_indexes(scales, self.thresholds, self.first_index)
        return indexes, (means.to(torch.float64) / 2.0**ACTIVATION_BITS).to(torch.float32), means

    def fixed_point(self, symbols: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """A slice's ``y_hat = symbol + mean`` as the next slices see it: ``A`` fractional bits,
        clamped to the activation range, int32."""
        value = symbols.to(torch.int64) * (1 << ACTIVATION_BITS) + means.to(symbols.device)
        return value.clamp(-self.limit, self.limit).to(torch.int32)


def fixed_point_medians(medians: torch.Tensor) -> torch.Tensor:
    """The bottleneck's per-channel medians with :data:`ACTIVATION_BITS` fractional bits (int64)."""
    return torch.round(medians.detach().to("cpu", torch.float64).reshape(-1) * 2.0**ACTIVATION_BITS).to(torch.int64)


_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def _cached(owner: nn.Module, tensors: tuple[torch.Tensor, ...], build):
    """``build()``, derived once per version of ``tensors`` and kept as long as ``owner`` lives."""
    key = tuple((id(t), t._version) for t in tensors)
    cached = _cache.get(owner)
    if cached is not None and cached[0] == key:
        return cached[1]
    value = build()
    with _cache_lock:
        _cache[owner] = (key, value)
    return value


def _scale_bound(gaussian_conditional: nn.Module) -> float:
    return float(gaussian_conditional.lower_bound_scale.bound.reshape(-1)[0])


def derive_integer_parameters(h_s: nn.Sequential, entropy_bottleneck: nn.Module, gaussian_conditional: nn.Module
                       ) -> IntegerGaussianParameters:
    """:class:`IntegerGaussianParameters` of a model's modules (compressai's ``EntropyBottleneck``
    and ``GaussianConditional``), derived once per version of the tensors they come from."""
    tensors = (*h_s.parameters(), entropy_bottleneck.quantiles, gaussian_conditional.scale_table,
               gaussian_conditional.lower_bound_scale.bound)
    return _cached(h_s, tensors, lambda: IntegerGaussianParameters(
        h_s, entropy_bottleneck._get_medians(), gaussian_conditional.scale_table, _scale_bound(gaussian_conditional)))


def derive_channel_conditional_parameters(h_s: nn.Sequential, slice_transforms: nn.ModuleList,
                                          entropy_bottleneck: nn.Module, gaussian_conditional: nn.Module
                                          ) -> "IntegerChannelConditionalParameters":
    """:class:`IntegerChannelConditionalParameters` of a model's modules, derived once per
    version of the tensors they come from."""
    tensors = (*h_s.parameters(), *slice_transforms.parameters(), entropy_bottleneck.quantiles,
               gaussian_conditional.scale_table, gaussian_conditional.lower_bound_scale.bound)
    return _cached(slice_transforms, tensors, lambda: IntegerChannelConditionalParameters(
        h_s, slice_transforms, entropy_bottleneck._get_medians(), gaussian_conditional.scale_table,
        _scale_bound(gaussian_conditional)))
