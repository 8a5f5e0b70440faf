"""The split rule of parallel substreams: whole rows of latents, from the latent shape alone.

A latent tensor ``[C, H, W]`` is coded in compressai's element order (C, H, W flattened:
element ``(c, h, w)`` is number ``(c * H + h) * W + w``), so its ``R = C * H`` rows of ``W``
latents are consecutive runs of elements. :func:`substream_rows` cuts that order into

    S = max(1, min(R, (C * H * W) // target_symbols))

substreams of whole rows, as equal as whole rows allow: substream ``j`` holds rows
``R * j // S`` to ``R * (j + 1) // S - 1``, i.e. elements ``bounds[j]`` to ``bounds[j+1] - 1``
with ``bounds[j] = (R * j // S) * W``. Every substream then holds at least
``target_symbols - W`` values (unless there is one substream), and the rule depends on
nothing but ``(C, H, W, target_symbols)``: an encoder and a decoder that agree on the
shape and on ``target_symbols`` (a constant of the format, or recorded in the file)
agree on the split without any table in the file.

The bounds feed :func:`codec.entropy.rangecoder.encode_substreams` /
``decode_substreams``. This module needs numpy only (no torch, no extension), though
importing it runs ``codec/entropy/__init__.py``, which imports compressai's entropy models.
"""
from __future__ import annotations

import math
import operator

import numpy as np

__all__ = ["SUBSTREAM_SYMBOLS", "latent_bounds", "substream_count", "substream_rows", "substream_segments"]

#: Target number of values per substream: a constant of format version 2 (docs/bitstream.md,
#: "Substreams"): the ``y`` section of a file is valid only when split with it, so changing
#: it needs a new format version. With it, a 4K image's latents of the shipped walloc
#: (48 x 270 x 480) make 94 substreams and a Kodak image's (48 x 64 x 96) 4; the measured
#: cost is in docs/rangecoder.md ("Parallel substreams").
SUBSTREAM_SYMBOLS = 65536


def _size(value: int, name: str) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return v


def substream_count(channels: int, height: int, width: int, target_symbols: int = SUBSTREAM_SYMBOLS) -> int:
    """Number of substreams of a ``[channels, height, width]`` latent: ``max(1, min(C*H, C*H*W // target))``."""
    c, h, w = _size(channels, "channels"), _size(height, "height"), _size(width, "width")
    target = _size(target_symbols, "target_symbols")
    if target < 1:
        raise ValueError("target_symbols must be >= 1")
    if c * h * w >= 2**62:
        raise ValueError(f"a latent of {c}x{h}x{w} values is too large to split")
    return max(1, min(c * h, c * h * w // target))


def substream_rows(channels: int, height: int, width: int, target_symbols: int = SUBSTREAM_SYMBOLS) -> np.ndarray:
    """Substream boundaries (int64, ``S + 1`` entries from 0 to ``C*H*W``) of whole latent rows.

    See the module docstring for the rule. Boundaries index compressai's element order of
    one ``[C, H, W]`` latent (one batch element).
    """
    s = substream_count(channels, height, width, target_symbols)
    rows = int(channels) * int(height)
    return (np.arange(s + 1, dtype=np.int64) * rows // s) * int(width)


def latent_bounds(shape: tuple[int, ...], target_symbols: int = SUBSTREAM_SYMBOLS) -> np.ndarray:
    """:func:`substream_rows` of a latent of any rank >= 1: its last axis is the row, every
    leading axis counts rows (``(C, H, W)`` gives ``substream_rows(C, H, W)``)."""
    if len(shape) < 1:
        raise ValueError("a latent needs at least one axis")
    *leading, height, width = [1, *shape] if len(shape) == 1 else shape
    return substream_rows(math.prod(_size(n, "shape") for n in leading), height, width, target_symbols)


def substream_segments(shape: tuple[int, ...], bounds: np.ndarray) -> list[list[tuple[int, int, int]]]:
    """The rows of every substream of a ``(C, H, W)`` latent as ``(channel, first row, end row)``
    runs in element order: what a coder working through the latent a band of rows at a time
    (all channels at once) needs before it can code or decode that substream. ``bounds`` are
    element bounds of whole rows (:func:`latent_bounds`)."""
    channels, height, width = (int(n) for n in shape)
    segments = []
    for first, end in zip(bounds[:-1] // width, bounds[1:] // width):
        runs = []
        for c in range(int(first) // height, (int(end) - 1) // height + 1):
            runs.append((c, max(int(first) - c * height, 0), min(int(end) - c * height, height)))
        segments.append(runs)
    return segments
