"""The tile size of a large image's transforms: a default, overridable per call (``--tile``).

``walloc`` analyses and synthesises a large image in tiles: bands of rows, each cut into
columns, every tile computed with a halo as wide as the transform's reach and cut to its own
pixels (docs/large-images.md, "Tiles"). The decoded pixels and the file's bytes are those of
the whole-image computation for any tile size (``tests/test_tiles.py``), so the size is a
trade between memory (a tile's activations) and time (the halos are computed twice); the
entropy coding's own bands (``CODING_ROWS``) do not depend on it.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: Smallest and largest tile side accepted, in pixels.
MIN_TILE, MAX_TILE = 256, 65536

#: Tile size (rows, columns) in pixels set in this context; None: each model's default.
_tile: ContextVar[tuple[int, int] | None] = ContextVar("tile_pixels", default=None)


def parse_tile(text: str) -> tuple[int, int]:
    """``"N"`` (N x N pixels) or ``"HxW"`` -> (rows, columns); ValueError with a one-line
    reason for anything else or a side outside :data:`MIN_TILE`..:data:`MAX_TILE`."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", text)
    if not match:
        raise ValueError(f"tile must be N or HxW in pixels (e.g. 512 or 512x1024), got {text!r}")
    rows = int(match.group(1))
    columns = int(match.group(2)) if match.group(2) else rows
    return checked_tile((rows, columns))


def checked_tile(size: tuple[int, int]) -> tuple[int, int]:
    """``size`` (rows, columns) if both sides are within :data:`MIN_TILE`..:data:`MAX_TILE`."""
    rows, columns = (int(n) for n in size)
    for side in (rows, columns):
        if not MIN_TILE <= side <= MAX_TILE:
            shown = f"{rows}x{columns}" if max(abs(rows), abs(columns)) < 10**9 else "a side of more digits than fit here"
            raise ValueError(f"tile sides must be {MIN_TILE} to {MAX_TILE} pixels, got {shown}")
    return rows, columns


@contextmanager
def tiles_of(size: tuple[int, int] | None) -> Iterator[None]:
    """Transforms run inside use tiles of ``size`` (rows, columns) pixels (None: the default)."""
    token = _tile.set(None if size is None else checked_tile(size))
    try:
        yield
    finally:
        _tile.reset(token)


def tile_pixels() -> tuple[int, int] | None:
    """The tile size set by :func:`tiles_of` here, or None for the model's default."""
    return _tile.get()
