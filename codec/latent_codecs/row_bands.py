"""Coding one image's ``y`` substreams a band of latent rows at a time, in bounded memory.

The format's split rule cuts ``y`` (``C x H x W``, element order channel by channel) into
substreams of whole rows (:func:`codec.entropy.substreams.latent_bounds`), while transforms
and entropy parameters come a band of rows at a time for all channels at once. A substream
is then a few runs of rows (:func:`codec.entropy.substreams.substream_segments`): usually
part of one channel, sometimes the last rows of one channel and the first of the next.

:class:`BandedEncoder` (:func:`encode_in_bands` for one stream) codes each substream as soon
as the bands holding its rows are there, and forgets a band once every substream that touches
it is coded; a model with several streams (walloc-cc's groups) feeds one encoder per stream
in one pass. :class:`BandedDecoder` decodes the substreams that touch the rows asked for,
computing the entropy parameters of the bands they need on demand (for a context model,
from other streams' decoders), and forgets them once used. Every
substream is coded exactly as by the whole-latent coder, so the bytes (and decoded values)
do not depend on the bands.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from codec.entropy.substreams import substream_segments

#: A band of rows ``start:stop`` of every channel: ``band(start, stop)`` -> arrays ``[C, stop - start, W]``.
BandFunction = Callable[[int, int], tuple[np.ndarray, ...]]


class _Bands:
    """Arrays ``[C, rows, W]`` of some bands of rows, and the runs of them substreams read."""

    def __init__(self) -> None:
        self.items: dict[int, tuple[int, tuple[np.ndarray, ...]]] = {}  # start -> (stop, arrays)

    def gather(self, runs: list[tuple[int, int, int]], which: int) -> np.ndarray:
        """The values of ``runs`` (channel, first, end row) in element order, from array ``which``."""
        parts = []
        for channel, first, end in runs:
            for start in sorted(self.items):
                stop, arrays = self.items[start]
                a, b = max(first, start), min(end, stop)
                if a < b:
                    parts.append(arrays[which][channel, a - start: b - start].reshape(-1))
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def keep(self, runs: list[list[tuple[int, int, int]]]) -> None:
        """Forget the bands none of ``runs`` reads."""
        for start in list(self.items):
            stop = self.items[start][0]
            if not any(a < stop and start < b for segment in runs for _, a, b in segment):
                del self.items[start]


def narrowed(values: np.ndarray) -> np.ndarray:
    """``values`` (integers) in the narrowest of int8, int16 and int32 that holds them all, if
    narrower than their own type; else ``values`` as they are."""
    if values.size == 0:
        return values
    low, high = int(values.min()), int(values.max())
    for kind in (np.int8, np.int16, np.int32):
        if np.dtype(kind).itemsize >= values.dtype.itemsize:
            break
        if np.iinfo(kind).min <= low and high <= np.iinfo(kind).max:
            return values.astype(kind)
    return values


class BandedEncoder:
    """One image's substreams of ``y`` of ``shape`` split at ``bounds``, coded from consecutive
    bands of rows handed to :meth:`add`; ``encode(symbols, indexes, local_bounds)`` codes
    substreams of consecutive values (a backend's ``encode_substreams``). Each substream is
    coded as soon as its rows are there; a band is forgotten once every substream reading it
    is coded. Several encoders may be fed in one pass (one per stream of a model)."""

    def __init__(self, shape: tuple[int, int, int], bounds: np.ndarray,
                 encode: Callable[[np.ndarray, np.ndarray, np.ndarray], list[bytes]]) -> None:
        self.shape, self.encode = shape, encode
        self.segments = substream_segments(shape, bounds)
        self.ready_at = [max(end for _, _, end in runs) for runs in self.segments]
        self.coded: list[bytes | None] = [None] * len(self.segments)
        self.bands, self.pending = _Bands(), list(range(len(self.segments)))

    def add(self, start: int, stop: int, symbols: np.ndarray, indexes: np.ndarray) -> None:
        """The int32 symbols and table indexes ``[C, stop - start, W]`` of rows ``start:stop``
        (the row after the last band added), coding every substream now complete. The band is
        kept in the narrowest integer type that holds it (a substream that ends one channel and
        starts the next keeps the first bands until the last: 2-3 bytes a latent, not 8)."""
        self.bands.items[start] = (stop, (narrowed(symbols), narrowed(indexes)))
        ready = [j for j in self.pending if self.ready_at[j] <= stop]
        if ready:
            symbols = [self.bands.gather(self.segments[j], 0) for j in ready]
            indexes = [self.bands.gather(self.segments[j], 1) for j in ready]
            local = np.concatenate([[0], np.cumsum([len(s) for s in symbols])])
            coded = self.encode(np.concatenate(symbols).astype(np.int32), np.concatenate(indexes).astype(np.int32), local)
            for j, data in zip(ready, coded):
                self.coded[j] = data
            self.pending = [j for j in self.pending if self.coded[j] is None]
        self.bands.keep([self.segments[j] for j in self.pending])

    def strings(self) -> list[bytes]:
        """The substreams, once every row was added."""
        if self.pending:
            raise ValueError(f"{len(self.pending)} substreams still miss rows")
        return self.coded  # type: ignore[return-value]


def encode_in_bands(shape: tuple[int, int, int], bounds: np.ndarray, band_rows: int, band: BandFunction,
                    encode: Callable[[np.ndarray, np.ndarray, np.ndarray], list[bytes]]) -> list[bytes]:
    """:class:`BandedEncoder`'s substreams, the int32 symbols and table indexes given by
    ``band(start, stop)`` for consecutive bands of ``band_rows`` rows."""
    encoder = BandedEncoder(shape, bounds, encode)
    for start in range(0, shape[1], band_rows):
        stop = min(shape[1], start + band_rows)
        encoder.add(start, stop, *band(start, stop))
    return encoder.strings()


class BandedDecoder:
    """The decoded latent ``y_hat`` of one image, decoded a band of rows at a time on demand.

    ``parameters(start, stop)`` gives the int32 table indexes and float32 means of rows
    ``start:stop`` (``start`` a multiple of ``band_rows``); ``decode(substreams, indexes,
    local_bounds)`` decodes consecutive substreams (a backend's ``decode_substreams``).
    :meth:`rows` returns any rows; :meth:`release` forgets the rows before a given one.

    For a context model that reads the decoded symbols, ``y_hat_of`` is given: then
    ``parameters`` gives the indexes and further arrays of the rows (no float means), the
    decoder keeps the int32 symbols and those arrays (:meth:`kept`), and ``y_hat`` is
    ``y_hat_of(symbols, *further)`` of the rows asked for. Keeping what ``y_hat`` is made
    from instead of ``y_hat`` beside it halves what walloc-cc's decoder holds a latent
    (docs/large-images.md).

    ``offsets(symbols, indexes)``, when given (and ``y_hat_of`` is not), is added to ``y_hat``
    after the symbols: the reconstruction offsets (:mod:`codec.latent_codecs.reconstruction`),
    in the whole-image decoder's order of additions.
    """

    def __init__(self, shape: tuple[int, int, int], bounds: np.ndarray, substreams: Sequence[bytes], band_rows: int,
                 parameters: BandFunction, decode: Callable[[list[bytes], np.ndarray, np.ndarray], np.ndarray],
                 y_hat_of: Callable[..., np.ndarray] | None = None,
                 offsets: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> None:
        self.shape, self.band_rows, self.y_hat_of, self.offsets = shape, band_rows, y_hat_of, offsets
        self.substreams, self.parameters, self.decode = list(substreams), parameters, decode
        self.segments = substream_segments(shape, bounds)
        self.pending = set(range(len(self.segments)))
        self.params = _Bands()  # (indexes,) of bands some pending substream reads
        # start -> (stop, rows [C, n, W] of [y_hat], or with y_hat_of [symbols, *further arrays])
        self.values: dict[int, tuple[int, list[np.ndarray]]] = {}

    def _band_of(self, row: int) -> tuple[int, int]:
        start = row - row % self.band_rows
        return start, min(self.shape[1], start + self.band_rows)

    def _need_parameters(self, runs: list[tuple[int, int, int]]) -> None:
        for _, first, end in runs:
            for row in range(first - first % self.band_rows, end, self.band_rows):
                start, stop = self._band_of(row)
                if start not in self.params.items and start not in self.values:
                    indexes, *arrays = self.parameters(start, stop)
                    self.params.items[start] = (stop, (narrowed(indexes),))
                    if self.y_hat_of is None:  # y_hat = means + decoded symbols
                        kept = [arrays[0].copy()]
                    else:
                        kept = [np.zeros(indexes.shape, np.int32), *arrays]
                    self.values[start] = (stop, kept)

    def _decode(self, first: int, last: int) -> None:
        """Decode every pending substream that touches rows ``first:last``."""
        wanted = [j for j in sorted(self.pending)
                  if any(a < last and first < b for _, a, b in self.segments[j])]
        if not wanted:
            return
        for j in wanted:
            self._need_parameters(self.segments[j])
        indexes = [self.params.gather(self.segments[j], 0) for j in wanted]
        local = np.concatenate([[0], np.cumsum([len(i) for i in indexes])])
        flat = np.concatenate(indexes)
        symbols = self.decode([self.substreams[j] for j in wanted], flat.astype(np.int32), local)
        for k, j in enumerate(wanted):
            self._add(self.segments[j], symbols[local[k]:local[k + 1]], flat[local[k]:local[k + 1]])
        self.pending.difference_update(wanted)
        self.params.keep([self.segments[j] for j in self.pending])

    def kept(self, first: int, last: int) -> list[np.ndarray]:
        """Rows ``first:last`` of every kept array (``y_hat``; with ``y_hat_of``, the symbols
        and the further parameter arrays), each ``[C, last - first, W]``."""
        self._decode(first, last)
        parts = []
        for start in sorted(self.values):
            stop, values = self.values[start]
            a, b = max(first, start), min(last, stop)
            if a < b:
                parts.append([v[:, a - start: b - start] for v in values])
        if not parts or sum(p[0].shape[1] for p in parts) != last - first:
            raise ValueError(f"rows {first}:{last} were released or are beyond the latent")
        return [np.concatenate(column, axis=1) if len(parts) > 1 else column[0] for column in zip(*parts)]

    def rows(self, first: int, last: int) -> torch.Tensor:
        """``y_hat`` rows ``first:last`` of every channel, ``[1, C, last - first, W]`` float32."""
        kept = self.kept(first, last)
        return torch.from_numpy(kept[0] if self.y_hat_of is None else self.y_hat_of(*kept))[None]

    def _add(self, runs: list[tuple[int, int, int]], symbols: np.ndarray, indexes: np.ndarray) -> None:
        """Add decoded symbols (element order of ``runs``, their table ``indexes`` alike) onto
        the means already in place, then their reconstruction offsets if any."""
        width, offset = self.shape[2], 0
        for channel, first, end in runs:
            row = first
            while row < end:
                start, _ = self._band_of(row)
                stop, values = self.values[start]
                b = min(end, stop)
                n = (b - row) * width
                decoded = symbols[offset: offset + n].reshape(b - row, width)
                if self.y_hat_of is None:
                    values[0][channel, row - start: b - start] += decoded.astype(np.float32)
                    if self.offsets is not None:
                        at = indexes[offset: offset + n].reshape(b - row, width)
                        values[0][channel, row - start: b - start] += self.offsets(decoded, at)
                else:
                    values[0][channel, row - start: b - start] = decoded
                offset, row = offset + n, b

    def release(self, before: int) -> None:
        """Forget the decoded rows of every band that ends at or before row ``before``."""
        for start in [s for s, (stop, _) in self.values.items() if stop <= before]:
            del self.values[start]
