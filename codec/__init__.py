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


def encode(image: Any, model: str = "walloc", quality: float | None = None, device: str = "cpu", *,
           bpp: float | None = None, size: int | str | None = None, psnr: float | None = None,
           best_effort: bool = False, effort: int = 0, progress: bool = False, threads: int | None = None,
           tile: int | tuple[int, int] | str | None = None) -> bytes:
    """Compress an image (PIL image, numpy array, file path, or an encoded image file's bytes)
    into a self-describing bitstream.

    ``model`` is a shipped model name (``codec models``) or a ``.safetensors`` weights file.
    Instead of ``quality``, one target may be given: ``bpp`` (at most), ``size`` (bytes at
    most; ``"50k"`` allowed) or ``psnr`` (dB, at least); the quality is then searched with
    real encodes (:mod:`codec.encoding.rate_control`). An unreachable target raises
    InputError, or with ``best_effort`` gives the nearest file and a warning. ``effort``
    (0 = one forward pass, up to 4) refines the latents for this image: a smaller file
    for the same quality at more encoding time (``docs/effort.md``); ``progress`` shows a
    bar on standard error while it runs. ``threads``: CPU threads for the bands of a tall
    image (default: the cores, at most 2; 1 uses the least memory); ``tile``: the side (or
    ``(rows, columns)``, or ``"HxW"``) in pixels of the tiles a large image's transforms work
    on (default: the model's; smaller uses less memory). The bytes depend on neither.
    """
    from codec.api import encode as _encode

    targets = {k: v for k, v in (("bpp", bpp), ("size", size), ("psnr", psnr)) if v is not None}
    if best_effort and not targets:
        from codec.errors import InputError

        raise InputError("best_effort applies to a bpp, size or psnr target; none was given")
    if not targets:
        return _encode(image, model=model, quality=quality, device=device, effort=effort, progress=progress,
                       threads=threads, tile=tile)
    from codec.encoding.rate_control import make_target

    if quality is not None or len(targets) > 1:
        from codec.errors import InputError

        raise InputError("give one of quality, bpp, size or psnr")
    (kind, value), = targets.items()
    return _encode(image, model=model, quality=make_target(kind, value, best_effort), device=device,
                   effort=effort, progress=progress, threads=threads, tile=tile)


def decode(data: bytes, device: str = "cpu", model: str | None = None, *, progress: bool = False,
           threads: int | None = None, tile: int | tuple[int, int] | str | None = None) -> Any:
    """Decode a bitstream produced by :func:`encode` into a ``PIL.Image.Image``.

    ``model`` is needed only for files coded with a weights file that does not ship;
    ``progress`` shows a bar on standard error when decoding takes more than a second;
    ``threads`` and ``tile`` as for :func:`encode` (the pixels depend on neither).
    """
    from codec.api import decode as _decode

    return _decode(data, device=device, model=model, progress=progress, threads=threads, tile=tile)
