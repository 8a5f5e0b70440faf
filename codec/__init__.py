"""codec: a learned image codec with real bitstreams.

Library use::

    import codec
    data = codec.encode("photo.png", model="walloc", quality=4.0)
    image = codec.decode(data)          # PIL.Image.Image
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["encode", "decode", "__version__"]


def encode(image: Any, model: str = "walloc", quality: float | None = None, device: str = "cpu") -> bytes:
    """Compress an image (PIL image, numpy array or file path) into a self-describing bitstream.

    ``model`` is a shipped model name (``codec models``) or a ``.safetensors`` weights file.
    """
    from codec.api import encode as _encode

    return _encode(image, model=model, quality=quality, device=device)


def decode(data: bytes, device: str = "cpu", model: str | None = None) -> Any:
    """Decode a bitstream produced by :func:`encode` into a ``PIL.Image.Image``.

    ``model`` is needed only for files coded with a weights file that does not ship.
    """
    from codec.api import decode as _decode

    return _decode(data, device=device, model=model)
