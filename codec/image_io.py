"""Turn what users pass (paths, PIL images, numpy arrays) into 8-bit RGB, and save results.

The codec codes 8-bit RGB. Other inputs are handled explicitly (docs/formats.md):

* grayscale (``L``, ``1``, 16-bit ``I;16``/``I``): coded as RGB with equal channels and
  decoded back to grayscale; 16-bit samples are reduced to 8 bits with a warning;
* palette (``P``) and ``YCbCr``: converted to RGB (nothing is lost: no warning);
  ``CMYK``: converted with a warning (without an ICC profile: a naive conversion);
* an embedded ICC profile other than sRGB (Display P3, Adobe RGB, a CMYK press profile):
  the pixels are converted to sRGB with it (Pillow's LittleCMS, perceptual intent), with a
  warning, since decoded images carry no profile and are sRGB;
* alpha (``RGBA``, ``LA``, ``PA``): the alpha channel is dropped with a warning (opaque
  images drop it silently);
* multi-frame files: the first frame is coded, with a warning;
* EXIF orientation is applied;
* floating-point images (mode ``F``, float arrays) and other modes are refused.

Warnings are :class:`codec.errors.ConversionWarning`; errors :class:`codec.errors.InputError`.
"""
from __future__ import annotations

import io
import os
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from codec.bitstream import MAX_PIXELS
from codec.errors import ConversionWarning, InputError
from codec.fileio import atomic_write

_GRAY_MODES = {"1", "L", "I;16", "I;16B", "I;16L", "I;16N", "I"}
_ORIENTATION = 0x0112  # the EXIF tag
#: Called with (width, height) before an image's pixels are decoded; raises for sizes it refuses.
SizeCheck = Callable[[int, int], None]


@dataclass
class LoadedImage:
    """An image ready to code: HxWx3 uint8 RGB, and whether it was grayscale."""

    rgb: np.ndarray
    grayscale: bool


def _warn(message: str) -> None:
    warnings.warn(message, ConversionWarning, stacklevel=3)


def _from_pil(image: Image.Image) -> LoadedImage:
    if getattr(image, "n_frames", 1) > 1:
        _warn(f"image has {image.n_frames} frames; only the first is coded")
    try:
        orientation = image.getexif().get(_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - Pillow raises many types for a malformed EXIF block; the pixels are fine
        _warn("unreadable EXIF data ignored (no orientation applied)")
        orientation = 1
    if orientation != 1:  # exif_transpose copies the image even when it has nothing to do
        image = ImageOps.exif_transpose(image)
    if image.mode in ("La", "RGBa"):  # premultiplied alpha: un-premultiply, then as LA / RGBA
        image = image.convert(image.mode.upper())
    mode = image.mode
    if mode in ("LA", "PA", "RGBA"):
        alpha = np.asarray(image.getchannel("A"))
        if alpha.size and alpha.min() < 255:
            _warn(f"{mode} image: the alpha channel is not coded and was dropped")
        image = image.convert("L" if mode == "LA" else "RGB")
        mode = image.mode
    if mode == "P":  # to RGB loses nothing: no warning (a transparent entry becomes alpha, which warns)
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        return _from_pil(image) if image.mode == "RGBA" else LoadedImage(np.array(image, dtype=np.uint8), False)
    if mode in _GRAY_MODES:
        return LoadedImage(_gray_to_rgb(_pil_array(image), mode), True)
    if mode in ("RGB", "CMYK") and image.info.get("icc_profile"):
        image, mode = _to_srgb(image), "RGB"
    if mode in ("CMYK", "YCbCr"):
        if mode == "CMYK":
            _warn("CMYK image converted to RGB (naive conversion, no ICC profile)")
        image = image.convert("RGB")
        mode = "RGB"
    if mode != "RGB":
        raise InputError(f"unsupported image mode {mode!r}: convert it to 8-bit RGB or grayscale first")
    return LoadedImage(_pil_array(image), False)


#: Rows of a decoded Pillow image converted to numpy at a time (:func:`_pil_array`).
STRIP_ROWS = 256


def _pil_array(image: Image.Image) -> np.ndarray:
    """``np.array(image)``, converted a strip of rows at a time into one array: numpy's own
    conversion of a whole image goes through a bytes copy of it (``tobytes``) and then copies
    that, two more images' worth of memory beside Pillow's own."""
    width, height = image.size
    if height <= STRIP_ROWS:
        return np.array(image)
    out = None
    for top in range(0, height, STRIP_ROWS):
        strip = np.asarray(image.crop((0, top, width, min(height, top + STRIP_ROWS))))
        if out is None:
            out = np.empty((height, *strip.shape[1:]), strip.dtype)
        out[top:top + len(strip)] = strip
    return out


#: The profile every decoded image is in (none is embedded): what other profiles convert to.
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _to_srgb(image: Image.Image) -> Image.Image:
    """``image`` (RGB or CMYK) converted from its embedded ICC profile to sRGB, with a warning;
    unchanged if the profile is sRGB already; an unreadable profile is ignored with a warning."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
        name = (ImageCms.getProfileDescription(profile) or "").strip() or "unnamed"
        if "srgb" in name.lower():
            return image
        converted = ImageCms.profileToProfile(image, profile, _SRGB, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as err:
        _warn(f"unreadable ICC profile ignored ({str(err).strip() or type(err).__name__})")
        return image
    _warn(f"colours converted from the ICC profile {name!r} to sRGB")
    return converted


def _to_8_bits(array: np.ndarray, what: str) -> np.ndarray:
    """Samples of 0..65535 as uint8, ``round(v * 255 / 65535)`` (so ``v * 257`` gives ``v`` back), with a warning."""
    if array.size and (array.min() < 0 or array.max() > 65535):
        raise InputError(f"{what} outside 0..65535 are not supported")
    _warn(f"{what} reduced to 8 bits (0..65535 scaled to 0..255)")
    return ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _gray_to_rgb(array: np.ndarray, mode: str) -> np.ndarray:
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        array = _to_8_bits(array, f"16-bit {mode} samples")
    return np.repeat(array[:, :, None], 3, axis=2)


def _from_array(array: np.ndarray) -> LoadedImage:
    if array.dtype.kind == "f":
        raise InputError("floating-point arrays are not accepted: pass uint8 (or uint16) samples")
    if array.dtype.kind not in "ub":
        raise InputError(f"array dtype {array.dtype} not supported: pass uint8 (or uint16) samples")
    if array.ndim == 2:
        return LoadedImage(_gray_to_rgb(array, "array"), True)
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise InputError(f"array of shape {array.shape} is not an image: expected HxW, HxWx3 or HxWx4")
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype.kind == "u" and array.dtype.itemsize == 2:  # either byte order
        array = _to_8_bits(array, "16-bit samples")
    elif array.dtype != np.uint8:
        raise InputError(f"array dtype {array.dtype} not supported: pass uint8 (or uint16) samples")
    if array.shape[2] == 1:
        return LoadedImage(np.repeat(array, 3, axis=2), True)
    if array.shape[2] == 4:
        if array[:, :, 3].min(initial=255) < 255:
            _warn("RGBA array: the alpha channel is not coded and was dropped")
        array = array[:, :, :3]
    return LoadedImage(np.ascontiguousarray(array), False)


def _open(file: Any, label: str, check_size: SizeCheck | None) -> LoadedImage:
    try:
        # The caller's limit replaces Pillow's guess, while the pixels are decoded too (TIFF checks
        # the size again when it loads).
        with _pillow_pixel_limit(check_size is not None), Image.open(file) as image:
            if check_size is not None:
                check_size(*image.size)  # from the header: before any pixel is decoded
            if image.mode in ("RGB", "RGBA") and any(";16" in str(tile[3]) for tile in image.tile):
                _warn(f"16-bit {image.mode} samples reduced to 8 bits (Pillow keeps the high byte)")
            image.load()
            return _from_pil(image)
    except UnidentifiedImageError:
        raise InputError(f"{label}: not a readable image (no format Pillow reads)") from None
    except Image.DecompressionBombError as err:
        raise InputError(f"{label}: not a readable image ({err})") from None
    except MemoryError:
        raise InputError(f"{label}: not enough memory to decode this image") from None
    except (OSError, SyntaxError, ValueError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(f"{label}: cannot decode image ({err})") from None


@contextmanager
def _pillow_pixel_limit(lifted: bool):
    """Lift Pillow's decompression-bomb limit inside (when the caller checks sizes itself): no
    error and no warning, since Pillow checks nothing when the limit is None (so no warnings
    filter is needed, which would not be thread-safe)."""
    if not lifted:
        yield
        return
    with _pixel_limit_lock:
        before, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = before


_pixel_limit_lock = threading.Lock()


def load_image(source: Any, check_size: SizeCheck | None = None) -> LoadedImage:
    """Load a path, an encoded file's bytes, a PIL image or a numpy array as 8-bit RGB
    (see the module docstring). ``check_size(width, height)`` is called before an encoded
    image's pixels are decoded (and before any conversion of the others) and may raise to
    refuse its size; with it, Pillow's own decompression-bomb limit is lifted."""
    if isinstance(source, Image.Image) and 0 in source.size \
            or isinstance(source, np.ndarray) and source.ndim >= 2 and 0 in source.shape[:2]:
        raise InputError("image is empty (0 pixels)")
    if check_size is not None and isinstance(source, Image.Image):
        check_size(*source.size)
    elif check_size is not None and isinstance(source, np.ndarray) and source.ndim >= 2:
        check_size(source.shape[1], source.shape[0])
    if isinstance(source, Image.Image):
        try:
            source.load()  # a closed or truncated lazily opened image fails here, in one line
        except (OSError, ValueError, SyntaxError) as err:
            raise InputError(f"the PIL image cannot be read ({err})") from None
        loaded = _from_pil(source)
    elif isinstance(source, np.ndarray):
        loaded = _from_array(source)
    elif isinstance(source, (str, os.PathLike)):
        if not os.fspath(source):
            raise InputError("empty path: name an image file")
        path = Path(source)
        if path.is_dir():
            raise InputError(f"{path}: is a folder, not an image file")
        if not path.exists():
            raise InputError(f"{path}: no such file")
        if not path.is_file():
            raise InputError(f"{path}: not a regular file (a device or a pipe)")
        loaded = _open(path, str(path), check_size)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        loaded = _open(io.BytesIO(bytes(source)), "the input bytes", check_size)
    else:
        raise InputError(f"cannot code a {type(source).__name__}: pass a path, encoded bytes, a PIL image "
                         "or a numpy array")
    h, w = loaded.rgb.shape[:2]
    if h == 0 or w == 0:
        raise InputError("image is empty (0 pixels)")
    if not loaded.rgb.flags.writeable:  # torch warns about (and may not use) read-only arrays
        loaded.rgb = loaded.rgb.copy()
    return loaded


#: Formats a decoded image may be written in: those Pillow writes that keep every pixel of an
#: RGB or grayscale image at its size (not GIF's palette, ICO's or ICNS's fixed sizes, nor the
#: formats Pillow registers but cannot write from RGB, such as XBM, MSP or HDF5).
OUTPUT_FORMATS = ("PNG", "TIFF", "BMP", "DIB", "PPM", "TGA", "SGI", "PCX", "IM", "WEBP", "JPEG", "JPEG2000", "AVIF")
#: Of those, the ones Pillow writes lossily by default: the decoded pixels are coded again.
LOSSY_OUTPUT_FORMATS = ("JPEG", "WEBP", "AVIF")


#: Bytes of a stream read before its image format must be known (:func:`read_image_stream`).
IDENTIFY_BYTES = 16 << 20
#: Most bytes a stream may hold per pixel of the size its header declares (a float RGBA TIFF
#: holds 16), plus this much for metadata, before it is refused as endless.
STREAM_BYTES_PER_PIXEL = 16
STREAM_SLACK = 64 << 20
_READ_CHUNK = 1 << 24


def read_image_stream(stream: Any, label: str = "standard input") -> bytes:
    """An encoded image's bytes from a stream that cannot seek (standard input), bounded: the
    format must be known from the first :data:`IDENTIFY_BYTES`, and no more bytes are read
    than an image of the size its header declares can hold, so ``/dev/zero`` or an endless
    pipe is refused instead of filling the memory. The bytes are decoded later, by
    :func:`load_image`."""
    data = bytearray(stream.read(IDENTIFY_BYTES))
    if not data:
        raise InputError(f"{label} is empty")
    width = height = None
    try:
        with _pillow_pixel_limit(True), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(bytes(data))) as image:
                width, height = image.size
    except UnidentifiedImageError:
        if len(data) < IDENTIFY_BYTES:
            return bytes(data)  # the whole input: load_image names the fault
        raise InputError(f"{label}: not a readable image (no format Pillow reads in its first "
                         f"{IDENTIFY_BYTES >> 20} MiB)") from None
    except Exception:  # noqa: BLE001 - a header Pillow cannot finish from the prefix: bounded below
        pass
    pixels = width * height if width is not None else MAX_PIXELS
    limit = STREAM_BYTES_PER_PIXEL * pixels + STREAM_SLACK
    while len(data) <= limit:
        piece = stream.read(min(_READ_CHUNK, limit + 1 - len(data)))
        if not piece:
            return bytes(data)
        data += piece
    size = f"a {width}x{height} image" if width is not None else "the largest image"
    raise InputError(f"{label}: more than {limit} bytes, more than {size} can hold")


def image_format(path: str | os.PathLike) -> str:
    """The Pillow format an output path's extension names; InputError for unknown extensions
    and for formats that cannot hold the decoded image (:data:`OUTPUT_FORMATS`)."""
    extension = Path(path).suffix.lower()
    registered = Image.registered_extensions()
    if extension not in registered:
        raise InputError(f"{path}: unknown image extension {extension!r} (use .png, .bmp, .tif, ...)")
    fmt = registered[extension]
    if fmt not in OUTPUT_FORMATS or fmt not in Image.SAVE:
        raise InputError(f"{path}: cannot write the decoded image as {fmt} (use .png, .tif, .bmp, .webp, .jpg, ...)")
    return fmt


def save_image(image: Image.Image, path: str | os.PathLike, fmt: str | None = None) -> None:
    """Save atomically, in ``fmt`` or else the format the file extension names."""
    fmt = fmt or image_format(path)
    atomic_write(path, lambda tmp: image.save(tmp, format=fmt))
