"""Exception types raised by the codec; the CLI turns them into one-line messages."""
from __future__ import annotations

from typing import Any


def shown(value: Any, limit: int = 40) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters: a user's value is
    echoed, never a 400-digit number or a whole file."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class CodecError(Exception):
    """Base class of every error the codec reports to users on purpose."""


class InputError(CodecError, ValueError):
    """An input image, file or argument cannot be used (unreadable, too small, bad value...)."""


class BitstreamError(CodecError, ValueError):
    """A compressed file is not valid: wrong magic/version, truncated, CRC mismatch, unknown model."""


class CodecWarning(UserWarning):
    """Base class of the warnings meant for users; the CLI prints each as one stderr line."""


class ConversionWarning(CodecWarning):
    """An input image was converted before coding (palette, alpha, 16-bit, CMYK...)."""


class TargetWarning(CodecWarning):
    """A rate-control target could not be met and the nearest reachable file was written."""
