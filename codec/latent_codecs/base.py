"""The interface every latent codec implements (see :mod:`codec.latent_codecs`)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

#: Stream name -> one list of substreams per image of the batch (today each stream is one substream).
Strings = dict[str, list[list[bytes]]]
#: Stream name -> the shape of one image's latent tensor that stream codes, e.g. (C, H, W).
Shapes = dict[str, tuple[int, ...]]


def straight_through_round(values: torch.Tensor) -> torch.Tensor:
    """``round(values)`` whose gradient is the identity's (the straight-through estimator):
    the ``round_fn`` of a latent codec's ``relaxed`` for training on the rounded latents."""
    return values + (torch.round(values) - values).detach()


class LatentCodec(ABC):
    """Training forward, compress to named streams, decompress; see :mod:`codec.latent_codecs`."""

    @abstractmethod
    def forward(self, y: torch.Tensor, *params: torch.Tensor) -> dict[str, Any]:
        """Training pass: ``{"likelihoods": {name: tensor}, "y_hat": tensor}``."""

    @abstractmethod
    def compress(self, y: torch.Tensor, *params: torch.Tensor) -> dict[str, Any]:
        """``{"strings": Strings, "shapes": Shapes, "y_hat": tensor}`` for a batch of latents."""

    @abstractmethod
    def decompress(self, strings: Strings, shapes: Shapes, *params: torch.Tensor) -> dict[str, Any]:
        """``{"y_hat": tensor}`` from what :meth:`compress` wrote."""

    def check_strings(self, strings: Strings, shapes: Shapes) -> None:
        """ValueError if what :meth:`decompress` would get is malformed in a way visible before
        any decoding (e.g. a wrong substream count): checked before memory is spent on it."""

    @abstractmethod
    def update(self, force: bool = False) -> bool:
        """(Re)build the entropy tables after training; True if any was rebuilt."""

    def __call__(self, y: torch.Tensor, *params: torch.Tensor) -> dict[str, Any]:
        return self.forward(y, *params)


def single_substreams(strings: Strings, name: str) -> list[bytes]:
    """The one substream of every image of stream ``name``; ValueError if another count.

    Streams are coded as one substream each today; the container can already hold several.
    """
    if name not in strings:
        raise ValueError(f"stream {name!r} is missing")
    if any(len(substreams) != 1 for substreams in strings[name]):
        raise ValueError(f"stream {name!r} must be one substream per image")
    return [substreams[0] for substreams in strings[name]]


def check_shape(shapes: Shapes, name: str, rank: int) -> tuple[int, ...]:
    """The per-image shape of stream ``name``; ValueError if missing or not of ``rank`` positive sizes."""
    shape = tuple(int(n) for n in shapes.get(name, ()))
    if len(shape) != rank or min(shape) < 1:
        raise ValueError(f"stream {name!r} needs a shape of {rank} positive sizes, got {shape}")
    return shape
