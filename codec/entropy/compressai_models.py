"""Code compressai ``EntropyBottleneck`` / ``GaussianConditional`` latents with our coders.

compressai builds integer symbols and per-element table indexes and hands them to its
rANS coder as Python lists; here the same symbols and indexes go, as numpy arrays, to a
coder backend chosen by name (:mod:`codec.entropy.coders`), one stream per batch element.
Dequantisation follows compressai exactly, so ``decode(encode(y))`` equals compressai's
``y_hat``.

This is the one module that reads compressai's private table buffers (``_quantized_cdf``,
``_cdf_length``, ``_offset``): :func:`entropy_tables` converts and validates them once per
version of the buffers (after ``update()`` or loading weights) and caches the result.
compressai's layout of those buffers is pinned by :data:`COMPRESSAI_VERSIONS` (tested).
"""
from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping

import numpy as np
import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional

from codec.entropy.coders import DEFAULT_CODER, get_coder
from codec.entropy.tables import EntropyTables

#: compressai versions whose table buffers this module reads: ``>= low, < high`` (pyproject.toml pins the same).
COMPRESSAI_VERSIONS = ((1, 2, 6), (1, 3))
#: The buffers of the tables, in :class:`EntropyTables` order.
TABLE_BUFFERS = ("_quantized_cdf", "_cdf_length", "_offset")

EntropyModel = EntropyBottleneck | GaussianConditional
_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def _buffers(model: EntropyModel) -> tuple[tuple[torch.Tensor, ...], tuple[int, ...]]:
    """The table buffers and their in-place versions: one of them changes whenever the tables do."""
    buffers = tuple(getattr(model, name) for name in TABLE_BUFFERS)
    return buffers, tuple(t._version for t in buffers)


def entropy_tables(model: EntropyModel) -> EntropyTables:
    """The validated tables of an updated compressai entropy model, converted once and cached.

    The cache entry keeps the buffers it was built from and their versions, so tables rebuilt
    by ``update()`` (new tensors) or loaded in place (new versions) are converted again.
    RuntimeError if the model has no tables yet (``update()`` builds them); ValueError if
    they are not valid quantized CDFs.
    """
    buffers, versions = _buffers(model)
    cached = _cache.get(model)
    if cached is not None and cached[1] == versions and all(a is b for a, b in zip(cached[0], buffers)):
        return cached[2]
    if model._quantized_cdf.numel() == 0:
        raise RuntimeError("entropy model has no CDF tables: call model.update() first")
    tables = EntropyTables.from_arrays(*(t.detach().cpu().numpy() for t in buffers))
    with _cache_lock:
        _cache[model] = (buffers, versions, tables)
    return tables


def size_table_buffers(model: EntropyModel, prefix: str, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Resize a fresh model's empty table buffers to the saved ones, so ``load_state_dict`` fills them."""
    names = TABLE_BUFFERS + (("scale_table",) if isinstance(model, GaussianConditional) else ())
    for name in names:
        buffer, key = getattr(model, name), f"{prefix}{name}"
        if buffer.numel() == 0 and key in state_dict:
            buffer.resize_(state_dict[key].size())


def _encode(model: EntropyModel, symbols: torch.Tensor, indexes: torch.Tensor, coder: str) -> list[bytes]:
    backend, tables = get_coder(coder), entropy_tables(model)
    sym = symbols.to(torch.int32).cpu().numpy()
    idx = indexes.to(torch.int32).cpu().numpy()
    return [backend.encode(np.ascontiguousarray(sym[i].reshape(-1)), np.ascontiguousarray(idx[i].reshape(-1)), tables)
            for i in range(sym.shape[0])]


def _decode(model: EntropyModel, strings: list[bytes], indexes: torch.Tensor, coder: str) -> torch.Tensor:
    if len(strings) != indexes.shape[0]:
        raise ValueError(f"got {len(strings)} streams for a batch of {indexes.shape[0]}")
    backend, tables = get_coder(coder), entropy_tables(model)
    idx = indexes.to(torch.int32).cpu().numpy()
    out = np.empty(idx.shape, dtype=np.int32)
    for i, data in enumerate(strings):
        out[i] = backend.decode(data, np.ascontiguousarray(idx[i].reshape(-1)), tables).reshape(idx.shape[1:])
    return torch.from_numpy(out)


def _bottleneck_medians(model: EntropyBottleneck, shape: torch.Size) -> torch.Tensor:
    medians = model._get_medians().detach()  # [1, C, 1, 1]
    return medians.reshape(1, -1, *([1] * (len(shape) - 2))).expand(shape)


def encode_bottleneck(model: EntropyBottleneck, z: torch.Tensor, coder: str = DEFAULT_CODER) -> list[bytes]:
    """Encode hyper-latents ``z`` [B, C, h, w] with a (factorized) EntropyBottleneck."""
    medians = _bottleneck_medians(model, z.shape)
    symbols = model.quantize(z, "symbols", medians)
    return _encode(model, symbols, model._build_indexes(z.size()), coder)


def decode_bottleneck_symbols(model: EntropyBottleneck, strings: list[bytes], size: tuple[int, int],
                              coder: str = DEFAULT_CODER) -> torch.Tensor:
    """The int32 symbols [B, C, *size] that :func:`encode_bottleneck` coded (``z_hat`` less the medians)."""
    shape = torch.Size((len(strings), len(entropy_tables(model)), *size))
    return _decode(model, strings, model._build_indexes(shape), coder)


def bottleneck_values(model: EntropyBottleneck, symbols: torch.Tensor) -> torch.Tensor:
    """``z_hat`` of decoded bottleneck symbols: the symbols plus the channel medians."""
    medians = _bottleneck_medians(model, symbols.shape)
    return symbols.to(medians.device, medians.dtype) + medians


def decode_bottleneck(model: EntropyBottleneck, strings: list[bytes], size: tuple[int, int],
                      coder: str = DEFAULT_CODER) -> torch.Tensor:
    """Decode what :func:`encode_bottleneck` wrote; returns ``z_hat`` [B, C, *size]."""
    return bottleneck_values(model, decode_bottleneck_symbols(model, strings, size, coder))


def scale_indexes(model: GaussianConditional, scales: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
    """The table index of every scale, equal to compressai's ``build_indexes``.

    compressai loops over the scale table with one comparison pass per entry (~4 s for a
    512x512 image on a CPU); a binary search gives the same indexes: the number of table
    entries (last excluded) strictly below the lower-bounded scale. ``table``: the scales
    to index instead of the model's own (which stays empty until the model is updated).
    """
    scales = model.lower_bound_scale(scales)
    table = (model.scale_table if table is None else table)[:-1].to(device=scales.device, dtype=scales.dtype).contiguous()
    return torch.bucketize(scales, table).int()


def encode_gaussian(model: GaussianConditional, y: torch.Tensor, scales: torch.Tensor, means: torch.Tensor,
                    coder: str = DEFAULT_CODER) -> list[bytes]:
    """Encode latents ``y`` under N(means, scales) with a GaussianConditional's tables."""
    symbols = model.quantize(y, "symbols", means)
    return _encode(model, symbols, scale_indexes(model, scales), coder)


def decode_gaussian(model: GaussianConditional, strings: list[bytes], scales: torch.Tensor, means: torch.Tensor,
                    coder: str = DEFAULT_CODER) -> torch.Tensor:
    """Decode what :func:`encode_gaussian` wrote; returns ``y_hat`` shaped like ``scales``."""
    symbols = _decode(model, strings, scale_indexes(model, scales), coder)
    return symbols.to(means.device, means.dtype) + means
