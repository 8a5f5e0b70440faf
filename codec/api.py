"""Library API: images in, self-describing bitstreams out, and back.

``encode``/``decode`` work on one image (path, PIL image or numpy array);
``encode_tensor``/``decode_to_tensor`` code whole batches of same-sized tensors for
evaluation and training code. Every byte string is a complete file (docs/bitstream.md).
"""
from __future__ import annotations

import io
import numbers
import os
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from codec import bitstream, zoo
from codec.band_pool import threads_for_bands
from codec.entropy import DEFAULT_CODER, get_coder
from codec.errors import BitstreamError, CodecError, InputError
from codec.image_io import load_image
from codec.latent_codecs.gaussian_conditional import version_1_streams
from codec.models import ARCHITECTURES, VariableRateModel
from codec.models.base import PixelRows
from codec.models.weights import check_device
from codec.tiling import checked_tile, parse_tile, tiles_of

if TYPE_CHECKING:
    from codec.encoding.rate_control import Target


def resolve_model(model: str | os.PathLike | VariableRateModel, device: str = "cpu") -> VariableRateModel:
    """A shipped model by name, a ``.safetensors`` weights file by path, or a model object.

    A weights file identical to a shipped model's (same SHA-256) is that model, name included.
    """
    if isinstance(model, VariableRateModel):
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise InputError(f"model must be a name or a weights path, got {type(model).__name__}")
    dev = check_device(device)
    return zoo.load_model(zoo.entry_for(model), device=str(dev))


def _quality(model: VariableRateModel, quality: float | None) -> float:
    if quality is None:
        architecture = next(name for name, cls in ARCHITECTURES.items() if isinstance(model, cls))
        quality = zoo.FAMILIES[architecture].default_in(model.quality_range)
    quality = zoo.check_quality(quality, model.quality_range, model.name)
    # The header stores float32: code with exactly the value the decoder will read.
    return struct.unpack("<f", struct.pack("<f", quality))[0]


#: Intra-op threads the networks run with on the CPU. CPU convolution kernels split their work
#: by the thread count, and the float results differ in the last bits from one count to
#: another: enough to move a decoded pixel by 1, or a latent across a rounding boundary.
#: Pinning the count makes bytes and pixels the same whatever the caller's thread setting,
#: at the price of one core per call. The setting is process-wide, so calls from several
#: Python threads take turns; run several processes (``--jobs``) to use more cores.
CPU_THREADS = 1
_threads_lock = threading.Lock()


@contextmanager
def reproducible_threads(device: torch.device) -> Iterator[None]:
    """Run the enclosed CPU work with :data:`CPU_THREADS` intra-op threads, then restore."""
    if device.type != "cpu":
        yield
        return
    with _threads_lock:
        before = torch.get_num_threads()
        torch.set_num_threads(CPU_THREADS)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def _pad(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    h, w = x.shape[-2:]
    pad_bottom, pad_right = -h % multiple, -w % multiple
    if pad_bottom or pad_right:
        x = F.pad(x, (0, pad_right, 0, pad_bottom), mode="replicate")
    return x, pad_right, pad_bottom


#: How far outside [0, 1] a pixel tensor may stray (half an 8-bit level: it still rounds into range).
PIXEL_TOLERANCE = 0.5 / 255


def check_pixels(x: Any) -> None:
    """InputError unless ``x`` is a non-empty float tensor ``[B, 3, H, W]`` of finite values in
    [0, 1] (within :data:`PIXEL_TOLERANCE`): 8-bit samples (0..255) or a NaN would otherwise
    be clamped into a file of another image without a word."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
        raise InputError(f"x must be a tensor [B, 3, H, W], got {getattr(x, 'shape', type(x).__name__)}")
    if x.numel() == 0:
        raise InputError(f"x is empty: shape {tuple(x.shape)}")
    if x.layout != torch.strided or x.device.type == "meta":
        raise InputError(f"x must be a dense tensor holding its values, got a {x.layout} tensor on {x.device}")
    check_image_size(x.shape[-1], x.shape[-2])  # before the values are read: an expanded view may be huge
    if not x.is_floating_point():
        raise InputError(f"x must be a floating-point tensor with values in [0, 1], got {x.dtype} "
                         "(for 8-bit samples: x.float() / 255)")
    low, high = torch.aminmax(x.detach())
    if not (torch.isfinite(low) and torch.isfinite(high)):
        raise InputError("x holds NaN or infinite values")
    if low < -PIXEL_TOLERANCE or high > 1 + PIXEL_TOLERANCE:
        raise InputError(f"x must hold values in [0, 1], got {float(low):g} to {float(high):g} "
                         "(for 8-bit samples: x / 255; else x.clamp(0, 1))")


def encode_tensor(x: torch.Tensor, model: str | VariableRateModel = "walloc", quality: float | None = None,
                  device: str = "cpu", grayscale: bool = False, effort: int = 0, progress: bool = False,
                  coder: str = DEFAULT_CODER, integer_parameters: bool | None = None) -> list[bytes]:
    """Encode a batch ``[B, 3, H, W]`` with values in [0, 1] (rounded to 8 bits) into B files.

    ``effort`` above 0 refines each image's latents before coding (see ``docs/effort.md``):
    smaller files for the same quality, at more encoding time; ``progress`` shows a bar on
    standard error while it runs. Each image draws its own refinement noise, so its file does
    not depend on its place in the batch; it may still differ from the image coded alone (a
    batched convolution's floats differ in the last bits from a single image's, and a hundred
    refinement steps amplify that), while at effort 0 it is the same file. ``x`` is checked
    first (:func:`check_pixels`). ``grayscale`` marks the files as of a grayscale image (the
    three channels should then be equal; decoding returns mode ``L``). ``coder`` names the
    coder backend (recorded in the files; ``"cuda"`` codes on the CPU when the CUDA module or
    a GPU is missing, with the same bytes, see :mod:`codec.entropy.cuda_coder`).
    ``integer_parameters``: compute the entropy parameters with the model's exact integer
    hyper-synthesis, so the files decode alike on every machine (None: the model's default,
    True for ``walloc``; False writes files as before it, e.g. to measure what it costs).
    """
    from codec.encoding import effort as effort_levels, refine

    try:
        coder_id = get_coder(coder).id
    except ValueError as err:
        raise InputError(str(err)) from None

    check_pixels(x)
    schedule = effort_levels.schedule_for(effort)
    net = resolve_model(model, device)
    quality = _quality(net, quality)
    if integer_parameters is not None and not isinstance(integer_parameters, (bool, np.bool_)):
        raise InputError(f"integer_parameters must be True, False or None, got {integer_parameters!r}")
    integer = net.integer_parameters if integer_parameters is None else bool(integer_parameters)
    height, width = x.shape[-2:]
    header = _header(net, quality, width, height, grayscale, integer, coder_id)
    dev = next(net.parameters()).device
    # One copy of the image (clamp's: the caller's tensor is left alone), then in place.
    x = x.detach().to(dev, torch.float32).clamp(0, 1).mul_(255).round_().div_(255)
    x, header.pad_right, header.pad_bottom = _pad(x, net.pad_multiple)
    with memory_errors("encode", width, height), reproducible_threads(dev):
        with torch.inference_mode():
            y, z = net.analyse(x, quality, integer)
        if schedule is not None:
            y, z = refine.refine_in_tiles(net, x, y, z, quality, schedule, height, width, progress=progress)
        with torch.inference_mode():
            out = net.compress_latents(y, z, coder=coder, integer=integer)
    return [_pack(header, out, i) for i in range(len(x))]


def _header(net: VariableRateModel, quality: float, width: int, height: int, grayscale: bool, integer: bool,
            coder_id: int) -> bitstream.Header:
    """The header of a new file (padding still 0); InputError if it cannot be written."""
    flags = (bitstream.FLAG_GRAYSCALE if grayscale else 0) | (bitstream.FLAG_INTEGER_PARAMETERS if integer else 0)
    header = bitstream.Header(net.name, net.weights_hash, quality, width, height, flags=flags, coder=coder_id)
    try:
        bitstream.validate_header(header)
    except ValueError as err:
        raise InputError(str(err)) from None
    return header


def _pack(header: bitstream.Header, out: dict[str, Any], image: int) -> bytes:
    """File ``image`` of what a model's ``compress`` returned."""
    return bitstream.pack(header, [bitstream.Section(name, out["shapes"][name], streams[image])
                                   for name, streams in out["strings"].items()])


def pixel_rows(rgb: np.ndarray, pad_right: int, device: torch.device) -> PixelRows:
    """The rows of an 8-bit image ``[H, W, 3]`` as a model codes them (``[1, 3, n, W +
    pad_right]`` float32 in [0, 1], rows past the last and the added columns repeating the
    last ones), converted only when asked for, a band of rows or a tile (columns ``first:last``
    of the padded width) at a time: a model that codes in tiles never holds the float image."""
    last, width = rgb.shape[0] - 1, rgb.shape[1]

    def rows(index: torch.Tensor, first: int = 0, stop: int | None = None) -> torch.Tensor:
        stop = width + pad_right if stop is None else stop
        if not 0 <= first < stop <= width + pad_right:
            raise ValueError(f"columns {first}:{stop} beyond the image's {width + pad_right}")
        own = min(stop, width) - first  # columns of the image; the rest repeat its last column
        source = rgb[index.clamp(max=last).numpy(), max(0, min(first, width - 1)):min(stop, width)]
        band = torch.from_numpy(source).to(device).permute(2, 0, 1)
        # One float tensor, padded in place (the values of F.pad's "replicate": copies of the last column).
        x = torch.empty((1, 3, band.shape[1], stop - first), dtype=torch.float32, device=device)
        if own > 0:
            x[0, :, :, :own] = band
        else:  # a tile of padding columns only
            x[0] = band[:, :, -1:]
        del band
        if own < stop - first and own > 0:
            x[..., own:] = x[..., own - 1: own]
        return x.div_(255)

    return rows


def _encode_image(rgb: np.ndarray, net: VariableRateModel, quality: float | None, grayscale: bool,
                  progress: bool = False) -> bytes:
    """One 8-bit image ``[H, W, 3]`` coded by the model's :meth:`~VariableRateModel.compress_image`
    (in bands where the model can: the float image is never held whole). ``progress``: a bar
    on standard error (after a second) of the pixel rows read, passes over the image counted."""
    quality = _quality(net, quality)
    height, width = rgb.shape[:2]
    header = _header(net, quality, width, height, grayscale, net.integer_parameters, get_coder(DEFAULT_CODER).id)
    header.pad_right, header.pad_bottom = -width % net.pad_multiple, -height % net.pad_multiple
    dev = next(net.parameters()).device
    pixels = pixel_rows(rgb, header.pad_right, dev)
    passes: list[int] = []  # first row read by the first read, passes started; bands may be read on threads
    lock = threading.Lock()

    def counted(index: torch.Tensor, first: int = 0, stop: int | None = None) -> torch.Tensor:
        if first == 0:  # the first tile of a band: count its rows
            with lock:
                if not passes:
                    passes[:] = [int(index[0]), 0]
                elif int(index[0]) == passes[0]:  # a pass over the image reads its first band again
                    passes[1] += 1
                    bar.reset()
                    bar.set_description(f"encode, pass {passes[1] + 1}")
                bar.update(max(0, min(height, int(index[-1]) + 1) - bar.n))
        return pixels(index, first, stop)

    with memory_errors("encode", width, height), reproducible_threads(dev), \
            _progress_bar(height, "encode", progress) as bar:
        out = net.compress_image(counted, height + header.pad_bottom, width + header.pad_right, quality)
    return _pack(header, out, 0)


@contextmanager
def _progress_bar(rows: int, what: str, show: bool) -> Iterator[Any]:
    """A tqdm bar of ``rows`` image rows on standard error, shown only after a second (and if ``show``)."""
    from tqdm import tqdm

    with tqdm(total=rows, desc=what, unit=" rows", disable=not show, leave=False, delay=1.0) as bar:
        yield bar


def encode(image: Any, model: str | VariableRateModel = "walloc", quality: float | Target | None = None,
           device: str = "cpu", effort: int = 0, progress: bool = False, threads: int | None = None,
           tile: int | tuple[int, int] | str | None = None) -> bytes:
    """Compress an image (path, encoded bytes, PIL image or numpy array) into one file's bytes.

    ``quality`` is a number in the model's range, or a rate-control
    :class:`~codec.encoding.rate_control.Target` (bpp, size or PSNR to meet). ``effort``
    (0 to :data:`codec.encoding.effort.MAX_EFFORT`) trades encoding time for a smaller file.
    ``threads``: CPU threads for the bands of a tall image (:mod:`codec.band_pool`; None: its
    default); ``tile``: the side (or ``(rows, columns)``, or ``"HxW"``) in pixels of the tiles a
    large image's transforms work on (:mod:`codec.tiling`; None: the model's default), smaller
    for less memory, larger for less time. The bytes depend on neither.
    """
    if threads is not None or tile is not None:
        with _band_options(threads, tile):
            return encode(image, model, quality, device, effort, progress)
    from codec.encoding.rate_control import Target, encode_to_target

    if isinstance(quality, Target):
        return encode_to_target(image, model, quality, device, effort=effort, progress=progress)[0]
    loaded = load_image(image, check_image_size)  # the size is checked before the pixels are decoded
    height, width = loaded.rgb.shape[:2]
    if effort == 0:
        return _encode_image(loaded.rgb, resolve_model(model, device), quality, loaded.grayscale, progress)
    with memory_errors("encode", width, height):
        x = torch.from_numpy(loaded.rgb).permute(2, 0, 1)[None].float() / 255
        return encode_tensor(x, model, quality, device, grayscale=loaded.grayscale, effort=effort,
                             progress=progress)[0]


@contextmanager
def _band_options(threads: Any, tile: Any) -> Iterator[None]:
    """Inside: band pools of ``threads`` threads and tiles of ``tile`` pixels, those given."""
    with ExitStack() as stack:
        if threads is not None:
            stack.enter_context(threads_for_bands(_thread_count(threads)))
        if tile is not None:
            stack.enter_context(tiles_of(_tile_size(tile)))
        yield


def _tile_size(tile: Any) -> tuple[int, int]:
    try:
        if isinstance(tile, str):
            return parse_tile(tile)
        if _is_integer(tile):
            return checked_tile((int(tile), int(tile)))
        if isinstance(tile, tuple) and len(tile) == 2 and all(map(_is_integer, tile)):
            return checked_tile((int(tile[0]), int(tile[1])))
    except ValueError as err:
        raise InputError(str(err)) from None
    raise InputError(f"tile must be an int, a (rows, columns) pair or 'HxW', got {tile!r}")


def _is_integer(value: Any) -> bool:
    """An int or a numpy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _thread_count(threads: Any) -> int:
    if not _is_integer(threads) or threads < 1:
        raise InputError(f"threads must be an integer of at least 1, got {threads!r}")
    return int(threads)


def check_image_size(width: int, height: int) -> None:
    """InputError for a size the container cannot hold (checked before any conversion)."""
    if not (1 <= width <= bitstream.MAX_SIDE and 1 <= height <= bitstream.MAX_SIDE) or \
            width * height > bitstream.MAX_PIXELS:
        raise InputError(f"image of {width}x{height} pixels is beyond the limits of the format "
                         f"({bitstream.MAX_SIDE} px a side, {bitstream.MAX_PIXELS:,} pixels)")


@contextmanager
def memory_errors(what: str, width: int, height: int) -> Iterator[None]:
    """Turn running out of memory inside the networks into one clear CodecError."""
    try:
        yield
    except MemoryError:
        raise CodecError(f"not enough memory to {what} a {width}x{height} image") from None
    except RuntimeError as err:
        if "alloc" not in str(err).lower() and "out of memory" not in str(err).lower():
            raise
        raise CodecError(f"not enough memory to {what} a {width}x{height} image") from None


def _model_for(header: bitstream.Header, model: str | os.PathLike | VariableRateModel | None,
               device: str) -> VariableRateModel:
    """The network that decodes a file: the one given, or the shipped weights its header names."""
    if model is None:
        entry = zoo.find_version(header.model, header.weights_hash)
        if entry is None:
            if header.model in {e.name for e in zoo.shipped_models()}:
                raise BitstreamError(
                    f"file was coded with weights of model {header.model!r} (hash {header.weights_hash.hex()}) "
                    "that this version does not ship; pass that weights file as the model (--model FILE)")
            raise BitstreamError(f"file was coded with unknown model {header.model!r}; "
                                 "pass its weights file as the model (--model FILE)")
        model = entry.path
    net = resolve_model(model, device)
    if net.weights_hash != header.weights_hash:
        raise BitstreamError(
            f"file was coded with other weights of model {header.model!r} (hash {header.weights_hash.hex()}, "
            f"given {net.weights_hash.hex()})")
    low, high = net.quality_range
    if not low <= header.quality <= high:
        raise BitstreamError(f"corrupt header: quality {header.quality:g} outside {low:g}..{high:g}")
    return net


def _streams(net: VariableRateModel, header: bitstream.Header, files: list[list[bitstream.Section]]
             ) -> tuple[dict[str, list[list[bytes]]], dict[str, tuple[int, ...]]]:
    """The streams and latent shapes of files that share a header (but for their payload),
    checked against the model before any decoding."""
    padded_h, padded_w = header.height + header.pad_bottom, header.width + header.pad_right
    if padded_h % net.pad_multiple or padded_w % net.pad_multiple or header.pad_bottom >= net.pad_multiple \
            or header.pad_right >= net.pad_multiple:
        raise BitstreamError("corrupt header: padding does not match the model")
    names, shapes = net.stream_names, net.latent_shapes(padded_h, padded_w)
    for sections in files:
        if tuple(s.name for s in sections) != names:
            raise BitstreamError(f"corrupt file: sections {', '.join(s.name for s in sections)}, "
                                 f"the model writes {', '.join(names)}")
        if any(s.shape and s.shape != shapes[s.name] for s in sections):  # version 1 files have none
            raise BitstreamError("corrupt header: latent shapes do not match the image size and model")
    return {name: [sections[k].substreams for sections in files] for k, name in enumerate(names)}, shapes


@contextmanager
def _decoding(net: VariableRateModel, header: bitstream.Header) -> Iterator[None]:
    """The context of decoding files of ``header``: one CPU thread, no autograd, version 1
    streams where it applies, running out of memory and corrupt payloads as CodecErrors."""
    try:
        with memory_errors("decode", header.width, header.height), \
                reproducible_threads(next(net.parameters()).device), torch.inference_mode(), \
                version_1_streams() if header.version == 1 else nullcontext():  # y: one stream, any size
            yield
    except ValueError as err:
        if isinstance(err, CodecError):
            raise
        raise BitstreamError(f"corrupt payload: {err}") from None


def _decode_group(net: VariableRateModel, header: bitstream.Header, files: list[list[bitstream.Section]]) -> torch.Tensor:
    """Decode the sections of files that share a header (but for their payload) into a batch."""
    strings, shapes = _streams(net, header, files)
    coder = bitstream.CODERS[header.coder]
    with _decoding(net, header):
        x_hat = net.decompress(strings, shapes, header.quality, coder=coder,
                               integer=header.integer_parameters)["x_hat"]
    x_hat = x_hat[..., : header.height, : header.width].clamp(0, 1)
    return (x_hat * 255).round().div(255).cpu()


#: Pixel rows converted to 8 bits at a time as decoded bands are written out.
_WRITE_ROWS = 64


def _decode_rows(net: VariableRateModel, header: bitstream.Header, sections: list[bitstream.Section],
                 sink: Callable[[np.ndarray], None], progress: bool = False) -> None:
    """One file's 8-bit pixels handed to ``sink`` a few rows at a time, top to bottom (uint8
    ``[n, W, 3]``, or ``[n, W]`` for grayscale), as the model's
    :meth:`~VariableRateModel.decompress_image` hands its bands over (``progress``: a bar of
    them on standard error after a second)."""
    strings, shapes = _streams(net, header, [sections])
    height, width = header.height, header.width
    written = 0

    def write(first: int, x: torch.Tensor) -> None:
        nonlocal written
        n = min(x.shape[-2], height - first)
        if n <= 0:
            return
        if first != written:
            raise AssertionError(f"rows from {first} handed over, {written} expected")
        for a in range(0, n, _WRITE_ROWS):  # a few rows at a time: the temporaries stay small
            b = min(n, a + _WRITE_ROWS)
            rgb = (x[0, :, a:b, :width].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
            sink(np.round(rgb.astype(np.float32).mean(axis=2)).astype(np.uint8) if header.grayscale else rgb)
        written += n
        bar.update(n)

    with _decoding(net, header), _progress_bar(height, "decode", progress) as bar:
        net.decompress_image(strings, shapes, header.quality, write, coder=bitstream.CODERS[header.coder],
                             integer=header.integer_parameters)
    if written != height:
        raise AssertionError(f"{written} of {height} rows decoded")


def _decode_image(net: VariableRateModel, header: bitstream.Header, sections: list[bitstream.Section],
                  progress: bool = False) -> np.ndarray:
    """One file's 8-bit pixels (``[H, W, 3]``, or ``[H, W]`` for grayscale), written a band of
    rows at a time as the model's :meth:`~VariableRateModel.decompress_image` hands them over
    (``progress``: a bar of them on standard error after a second)."""
    shape = (header.height, header.width) if header.grayscale else (header.height, header.width, 3)
    out: np.ndarray | None = None  # made when the first rows arrive, so a corrupt payload fails first
    row = 0

    def sink(rows: np.ndarray) -> None:
        nonlocal out, row
        if out is None:
            with memory_errors("decode", header.width, header.height):
                out = np.empty(shape, np.uint8)
        out[row:row + len(rows)] = rows
        row += len(rows)

    _decode_rows(net, header, sections, sink, progress)
    return out if out is not None else np.empty(shape, np.uint8)


def file_bytes(data: Any) -> bytes | bytearray | memoryview:
    """``data`` if it is a file's bytes; InputError otherwise (a path names how to read it)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return data
    if isinstance(data, os.PathLike) or isinstance(data, str) and len(data) <= 4096 and data.isprintable():
        raise InputError(f"decode takes a file's bytes, not its path: open({str(data)!r}, 'rb').read()")
    if isinstance(data, str):
        raise InputError("decode takes a file's bytes, got a str: read the file in binary mode ('rb')")
    raise InputError(f"decode takes a file's bytes, got {type(data).__name__}")


def decode_to_tensor(data: Sequence[bytes], device: str = "cpu", model: str | VariableRateModel | None = None) -> torch.Tensor:
    """Decode files of one image size into a batch ``[B, 3, H, W]`` of 8-bit values in [0, 1]."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        raise InputError("decode_to_tensor takes a sequence of files; use decode() for one")
    if not isinstance(data, Sequence):
        raise InputError(f"decode_to_tensor takes a sequence of files' bytes, got {type(data).__name__}")
    parsed = [bitstream.unpack(file_bytes(d)) for d in data]
    if not parsed:
        raise InputError("no files to decode")
    sizes = {(h.height, h.width) for h, _ in parsed}
    if len(sizes) != 1:
        raise InputError(f"files of different image sizes cannot form one batch: {sorted(sizes)}")
    out: list[torch.Tensor | None] = [None] * len(parsed)
    groups: dict[tuple, list[int]] = {}
    for i, (h, _) in enumerate(parsed):
        groups.setdefault((h.model, h.weights_hash, h.quality, h.pad_right, h.pad_bottom, h.coder,
                           h.integer_parameters), []).append(i)
    for members in groups.values():
        header = parsed[members[0]][0]
        net = _model_for(header, model, device)
        batch = _decode_group(net, header, [parsed[i][1] for i in members])
        for j, i in enumerate(members):
            out[i] = batch[j]
    return torch.stack(out)  # type: ignore[arg-type]


def decode(data: bytes, device: str = "cpu", model: str | VariableRateModel | None = None,
           progress: bool = False, threads: int | None = None,
           tile: int | tuple[int, int] | str | None = None) -> Image.Image:
    """Decode one file's bytes into a PIL image (RGB, or L for grayscale inputs); ``progress``
    shows a bar on standard error when it takes more than a second; ``threads`` and ``tile``
    as for :func:`encode` (the pixels depend on neither)."""
    if threads is not None or tile is not None:
        with _band_options(threads, tile):
            return decode(data, device, model, progress)
    header, sections = bitstream.unpack(file_bytes(data))
    net = _model_for(header, model, device)
    pixels = _decode_image(net, header, sections, progress)
    with memory_errors("decode", header.width, header.height):
        return Image.fromarray(pixels)


def decode_png(data: bytes, file: BinaryIO, device: str = "cpu", model: str | VariableRateModel | None = None,
               progress: bool = False, threads: int | None = None,
               tile: int | tuple[int, int] | str | None = None) -> tuple[int, int, str]:
    """Decode one file's bytes into a PNG written to the binary file ``file``, a band of rows at
    a time as they are decoded (:class:`codec.png_writer.PngWriter`): the decoded image is never
    held whole. The pixels are those of :func:`decode`. Returns (width, height, mode: "RGB" or
    "L"); ``progress``, ``threads`` and ``tile`` as for :func:`decode`. The PNG is written while
    the payload is decoded, so a corrupt payload raises with part of it written: write to a
    temporary file and rename it on success, as ``codec decode`` does."""
    from codec.png_writer import PngWriter

    if isinstance(file, (str, os.PathLike)) or not callable(getattr(file, "write", None)) \
            or isinstance(file, io.TextIOBase):
        raise InputError(f"file must be a binary file open for writing (open(path, 'wb')), got {type(file).__name__}")

    if threads is not None or tile is not None:
        with _band_options(threads, tile):
            return decode_png(data, file, device, model, progress)
    header, sections = bitstream.unpack(file_bytes(data))
    net = _model_for(header, model, device)
    writer = PngWriter(file, header.width, header.height, 1 if header.grayscale else 3)
    _decode_rows(net, header, sections, writer.write, progress)
    writer.close()
    return header.width, header.height, "L" if header.grayscale else "RGB"
