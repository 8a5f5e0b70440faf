"""The ``cuda`` coder backend: the range coder's substreams coded on a CUDA GPU.

It runs the compiled module ``codec._cuda_rangecoder`` (csrc/cuda/, one GPU thread per
substream over the same arithmetic as the CPU coder, ``csrc/cuda/coder_core.hpp``), whose
bytes are exactly the ``cpu`` backend's: so it records ``cpu``'s coder id in files, and a file
encoded on either decodes on the other (docs/rangecoder.md, "CUDA coder"). Where the module is
not built, or no GPU is visible, it codes with the ``cpu`` backend instead: the same bytes, so
only the speed differs; :func:`cuda_available` says which applies.

Nothing in this module has yet run on a GPU (no GPU was available when it was written);
``python tools/gpu_check.py`` checks it on one.

Arguments are those of every backend (numpy arrays, :class:`EntropyTables`); ``symbols``,
``indexes`` may also be int32 torch CUDA tensors, which are used where they are, without a
copy. The tables go to the GPU once per :class:`EntropyTables` (kept with them).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from codec import bitstream
from codec.entropy.coders import coder_threads, get_coder, register_coder
from codec.entropy.tables import EntropyTables


@functools.lru_cache(maxsize=1)
def _module():
    """``codec._cuda_rangecoder`` when it is built and sees a GPU that torch sees too, else None."""
    try:
        from codec import _cuda_rangecoder as ext
    except ImportError:
        return None
    try:
        import torch
    except ImportError:
        return None
    if ext.device_count() < 1 or not torch.cuda.is_available():
        return None
    return ext


def cuda_available() -> bool:
    """Whether the ``cuda`` backend codes on the GPU (else it codes with ``cpu``, same bytes)."""
    return _module() is not None


def build_status() -> str:
    """One line on ``codec._cuda_rangecoder``: built or not, its CUDA runtime and target, GPUs seen."""
    try:
        from codec import _cuda_rangecoder as ext
    except ImportError as err:
        return f"not built ({err})"
    runtime = f"{ext.CUDA_RUNTIME_VERSION // 1000}.{ext.CUDA_RUNTIME_VERSION % 1000 // 10}"
    return f"built (CUDA runtime {runtime}, {ext.ARCH}), {ext.device_count()} GPU(s) visible to it"


def _on_gpu(x, name: str):
    """``x`` as a C-contiguous int32 torch CUDA tensor (a copy only when it is not one)."""
    import torch

    if isinstance(x, torch.Tensor) and x.is_cuda and x.dtype == torch.int32 and x.is_contiguous():
        return x
    a = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x, dtype=np.int32))
    if a.dtype.is_floating_point:
        raise TypeError(f"{name} must be an integer array, got dtype {a.dtype}")
    return a.to(device="cuda", dtype=torch.int32).contiguous()


@register_coder
class CudaRangeCoder:
    """The range coder on a CUDA GPU, byte-identical to ``cpu`` (whose id it records)."""

    name = "cuda"
    writes = "cpu"
    id = bitstream.coder_id("cpu")

    def tables(self, tables: EntropyTables):
        """The tables as three int32 CUDA tensors, copied once per :class:`EntropyTables`."""
        return tables.prepared(self.name, lambda t: tuple(_on_gpu(a, n) for a, n in (
            (t.cdfs, "cdfs"), (t.cdf_lengths, "cdf_lengths"), (t.offsets, "offsets"))))

    def encode(self, symbols, indexes, tables: EntropyTables) -> bytes:
        n = len(indexes)
        return self.encode_substreams(symbols, indexes, tables, np.array([0, n], np.int64))[0]

    def decode(self, data: bytes, indexes, tables: EntropyTables) -> np.ndarray:
        n = len(indexes)
        return self.decode_substreams([data], indexes, tables, np.array([0, n], np.int64))

    def encode_substreams(self, symbols, indexes, tables: EntropyTables, bounds: np.ndarray,
                          threads: int | None = None) -> list[bytes]:
        """As the ``cpu`` backend's; ``threads`` is unused on the GPU (one thread per substream)."""
        ext = _module()
        if ext is None:
            return get_coder("cpu").encode_substreams(_host(symbols), _host(indexes), tables, bounds,
                                                      coder_threads(len(bounds) - 1) if threads is None else threads)
        return ext.encode_substreams(_on_gpu(symbols, "symbols"), _on_gpu(indexes, "indexes"), *self.tables(tables),
                                     _bounds(bounds))

    def decode_substreams(self, strings: Sequence[bytes], indexes, tables: EntropyTables, bounds: np.ndarray,
                          threads: int | None = None) -> np.ndarray:
        """As the ``cpu`` backend's (a numpy int32 array); ValueError for a corrupt substream."""
        ext = _module()
        if ext is None:
            return get_coder("cpu").decode_substreams(strings, _host(indexes), tables, bounds,
                                                      coder_threads(len(bounds) - 1) if threads is None else threads)
        import torch

        idx = _on_gpu(indexes, "indexes")
        out = torch.empty(idx.shape[0], dtype=torch.int32, device=idx.device)
        ext.decode_substreams(list(strings), idx, *self.tables(tables), _bounds(bounds), out)
        return out.cpu().numpy()


def _host(x) -> np.ndarray:
    """A torch tensor (any device) or array-like as a numpy array, for the CPU fallback."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _bounds(bounds) -> np.ndarray:
    b = np.asarray(bounds)
    if b.dtype.kind not in "iu":
        raise TypeError(f"bounds must be an integer array, got dtype {b.dtype}")
    return np.ascontiguousarray(b, dtype=np.int64)
