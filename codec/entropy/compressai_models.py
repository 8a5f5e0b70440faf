"""Code compressai ``EntropyBottleneck`` / ``GaussianConditional`` latents with our coder.

compressai builds integer symbols and per-element table indexes and hands them to its
rANS coder as Python lists; here the same symbols and indexes go to
:mod:`codec.entropy.rangecoder` as numpy arrays, one stream per batch element. Dequantisation
follows compressai exactly, so ``decode(encode(y))`` equals compressai's ``y_hat``.
"""
from __future__ import annotations

import numpy as np
import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional


def _tables(model: EntropyBottleneck | GaussianConditional) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (cdfs, cdf_lengths, offsets) tables of an updated compressai entropy model."""
    if model._quantized_cdf.numel() == 0:
        raise RuntimeError("entropy model has no CDF tables: call model.update() first")
    return (
        np.ascontiguousarray(model._quantized_cdf.cpu().numpy(), dtype=np.int32),
        np.ascontiguousarray(model._cdf_length.reshape(-1).cpu().numpy(), dtype=np.int32),
        np.ascontiguousarray(model._offset.reshape(-1).cpu().numpy(), dtype=np.int32),
    )


def _encode(model, symbols: torch.Tensor, indexes: torch.Tensor) -> list[bytes]:
    from codec.entropy import rangecoder  # compiled extension, needed only for real coding

    cdfs, lengths, offsets = _tables(model)
    sym = symbols.to(torch.int32).cpu().numpy()
    idx = indexes.to(torch.int32).cpu().numpy()
    return [
        rangecoder.encode(np.ascontiguousarray(sym[i].reshape(-1)), np.ascontiguousarray(idx[i].reshape(-1)), cdfs, lengths, offsets)
        for i in range(sym.shape[0])
    ]


def _decode(model, strings: list[bytes], indexes: torch.Tensor) -> torch.Tensor:
    from codec.entropy import rangecoder  # compiled extension, needed only for real coding

    if len(strings) != indexes.shape[0]:
        raise ValueError(f"got {len(strings)} streams for a batch of {indexes.shape[0]}")
    cdfs, lengths, offsets = _tables(model)
    idx = indexes.to(torch.int32).cpu().numpy()
    out = np.empty(idx.shape, dtype=np.int32)
    for i, data in enumerate(strings):
        out[i] = rangecoder.decode(data, np.ascontiguousarray(idx[i].reshape(-1)), cdfs, lengths, offsets).reshape(idx.shape[1:])
    return torch.from_numpy(out)


def _bottleneck_medians(model: EntropyBottleneck, shape: torch.Size) -> torch.Tensor:
    medians = model._get_medians().detach()  # [1, C, 1, 1]
    return medians.reshape(1, -1, *([1] * (len(shape) - 2))).expand(shape)


def encode_bottleneck(model: EntropyBottleneck, z: torch.Tensor) -> list[bytes]:
    """Encode hyper-latents ``z`` [B, C, h, w] with a (factorized) EntropyBottleneck."""
    medians = _bottleneck_medians(model, z.shape)
    symbols = model.quantize(z, "symbols", medians)
    return _encode(model, symbols, model._build_indexes(z.size()))


def decode_bottleneck(model: EntropyBottleneck, strings: list[bytes], size: tuple[int, int]) -> torch.Tensor:
    """Decode what :func:`encode_bottleneck` wrote; returns ``z_hat`` [B, C, *size]."""
    shape = torch.Size((len(strings), model._quantized_cdf.size(0), *size))
    symbols = _decode(model, strings, model._build_indexes(shape))
    medians = _bottleneck_medians(model, shape)
    return symbols.to(medians.device, medians.dtype) + medians


def scale_indexes(model: GaussianConditional, scales: torch.Tensor) -> torch.Tensor:
    """The table index of every scale, equal to compressai's ``build_indexes``.

    compressai loops over the scale table with one comparison pass per entry (~4 s for a
    512x512 image on a CPU); a binary search gives the same indexes: the number of table
    entries (last excluded) strictly below the lower-bounded scale.
    """
    scales = model.lower_bound_scale(scales)
    table = model.scale_table[:-1].to(device=scales.device, dtype=scales.dtype).contiguous()
    return torch.bucketize(scales, table).int()


def encode_gaussian(model: GaussianConditional, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor) -> list[bytes]:
    """Encode latents ``y`` under N(means, scales) with a GaussianConditional's tables."""
    symbols = model.quantize(y, "symbols", means)
    return _encode(model, symbols, scale_indexes(model, scales))


def decode_gaussian(model: GaussianConditional, strings: list[bytes], scales: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """Decode what :func:`encode_gaussian` wrote; returns ``y_hat`` shaped like ``scales``."""
    symbols = _decode(model, strings, scale_indexes(model, scales))
    return symbols.to(means.device, means.dtype) + means
