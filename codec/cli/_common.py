"""Helpers shared by the subcommands: input and output paths checked before any work,
``-`` for standard input and output, warnings on stderr, timing."""
from __future__ import annotations

import argparse
import os
import stat
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from codec.errors import CodecWarning, InputError

#: The path that means standard input (as an input) or standard output (as an output).
STDIO = "-"
#: Extensions a bitstream may be written under (anything that is not an image extension is fine).
BITSTREAM_SUFFIX = ".bin"


@contextmanager
def report_conversions(command: str) -> Iterator[None]:
    """Print every warning raised inside as one stderr line (:class:`CodecWarning`, every
    time; others, such as Pillow's about a corrupt EXIF block, once each), after the work:
    printing while recording would append to the very list being read."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CodecWarning)
        try:
            yield
        finally:
            recorded = list(caught)
    shown = set()
    for w in recorded:
        text = str(w.message).strip()
        line = f"codec {command}: warning: {text.splitlines()[0] if text else w.category.__name__}"
        if issubclass(w.category, CodecWarning) or line not in shown:
            print(line, file=sys.stderr)
            shown.add(line)


def check_input(path: str) -> None:
    """InputError unless ``path`` is ``-`` or an existing file (one wording for every command)."""
    if path == STDIO:
        return
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a folder, not a file")


def read_bitstream(path: str) -> bytes:
    """The bytes of a codec file, or of standard input for ``-``, read no further than its
    header announces (:func:`codec.bitstream.read`): a huge input that is not a codec file
    fails after its first bytes instead of filling the memory."""
    from codec import bitstream

    check_input(path)
    if path == STDIO:
        return bitstream.read(sys.stdin.buffer)
    with open(path, "rb") as f:
        info = os.fstat(f.fileno())
        return bitstream.read(f, info.st_size if stat.S_ISREG(info.st_mode) else None)


def check_writable(folder: str | os.PathLike) -> None:
    """InputError unless files can be created in the existing ``folder``."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"output folder {folder} is not writable")


def check_output(output: str, inputs: list[str], kind: str) -> None:
    """Refuse, before any work, an output that would fail or do harm once the work is done.

    ``kind`` is ``"image"`` (the extension must name an image format), ``"bitstream"``
    (an image extension is refused: a codec file under a ``.png`` name fools every viewer)
    or ``"bitstream_any"`` (the caller chose the extension).
    The output may not be one of ``inputs``, a folder, or in a folder that does not exist.
    """
    if output == STDIO:
        if sys.stdout is not None and sys.stdout.isatty():
            raise InputError("standard output is a terminal: redirect it (> FILE) or name an OUTPUT file")
        return
    if kind not in ("image", "bitstream", "bitstream_any"):
        raise ValueError(f"unknown output kind {kind!r}")
    if output.endswith(("/", os.sep)):
        raise InputError(f"output {output} ends with a slash: name a file, or use -o OUTDIR for a folder")
    dst = Path(output)
    if dst.is_dir():
        raise InputError(f"output {dst} is a folder; give a file name")
    folder = dst.parent if str(dst.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"output folder {folder} does not exist")
    check_writable(folder)
    for src in inputs:
        if src != STDIO and dst.exists() and os.path.exists(src) and os.path.samefile(src, dst):
            raise InputError(f"output {dst} is the input file {src}; choose another name")
    if kind == "image":
        from codec.image_io import image_format

        image_format(output)
    elif kind == "bitstream":
        from PIL import Image

        if dst.suffix.lower() in Image.registered_extensions():
            raise InputError(f"output {dst}: a codec file under an image extension would not open as an image; "
                             f"use {BITSTREAM_SUFFIX}")


def warn_if_lossy(command: str, fmt: str) -> None:
    """One stderr warning when decoded images are written in a lossy format (JPEG, WebP, AVIF)."""
    from codec.image_io import LOSSY_OUTPUT_FORMATS

    if fmt in LOSSY_OUTPUT_FORMATS:
        print(f"codec {command}: warning: {fmt} output codes the decoded pixels again, lossily (Pillow's "
              "default quality); .png keeps them", file=sys.stderr)


def write_output(path: str, write: Callable[[str], object]) -> None:
    """Write an output atomically, or to standard output for ``-``.

    ``write(target)`` writes to the path it is given; for ``-`` it is given a temporary
    file whose bytes are then copied to standard output.
    """
    from codec.fileio import atomic_write

    if path != STDIO:
        atomic_write(path, write)
        return
    if sys.stdout is None:
        raise InputError("standard output is closed")
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        tmp = os.path.join(folder, "out")
        write(tmp)
        sys.stdout.buffer.write(Path(tmp).read_bytes())
        sys.stdout.buffer.flush()


def progress_wanted() -> bool:
    """Whether to draw progress bars: only on a terminal (a log file would fill with frames)."""
    return sys.stderr is not None and sys.stderr.isatty()


def status_stream(output: str):
    """Where a command's one-line report goes: stderr when the data itself goes to stdout."""
    return sys.stderr if output == STDIO else sys.stdout


def add_device(parser, bands: bool = True) -> None:
    """``--device``; with ``bands``, ``--threads`` and ``--tile`` (how a large image's bands are worked on)."""
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs (default cpu)")
    if not bands:
        return
    parser.add_argument("--threads", type=count_of("threads", "--threads"), default=None, metavar="N",
                        help="CPU threads for the bands of a tall image (default: the cores, at most 2); "
                             "each holds a band's activations, so 1 uses the least memory. "
                             "The bytes and pixels do not depend on it")
    parser.add_argument("--tile", type=tile_size, default=None, metavar="N|HxW",
                        help="tile size in pixels (N x N, or H x W) of a large image's transforms "
                             "(default 512x1024 for walloc models): smaller uses less memory, larger may be faster. "
                             "The bytes and pixels do not depend on it")


def tile_size(text: str) -> tuple[int, int]:
    """An argparse type for ``--tile``: exit status 2 with a one-line message unless valid."""
    from codec.tiling import parse_tile

    try:
        return parse_tile(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def at_least(option: str, minimum: int, kind: type = int, what: str | None = None) -> Callable[[str], float]:
    """An argparse type for a finite number of at least ``minimum``: exit status 2 with a
    one-line message otherwise (NaN and infinity included)."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what or option} {text!r}") from None
        if not minimum <= value < float("inf"):
            finite = "a finite number, " if kind is float else ""
            raise argparse.ArgumentTypeError(f"{option} must be {finite}at least {minimum}, got {text}")
        return value

    return parse


def count_of(what: str, option: str) -> Callable[[str], int]:
    """An argparse type for a count of at least 1 (``--jobs``, ``--threads``)."""
    return at_least(option, 1, int, f"number of {what}")


def non_negative(option: str, kind: type = int) -> Callable[[str], float]:
    """An argparse type for a number of at least 0 (``--minutes``, ``--workers``)."""
    return at_least(option, 0, kind)


def run_tool(main: Callable[[], int | None], name: str) -> int:
    """Run a ``tools/*.py`` script's ``main`` with the command line's manners: a user's mistake
    (a missing file, a bad value, an unreadable input) is one stderr line and exit status 1,
    Ctrl-C exit status 130, never a traceback."""
    import json
    import subprocess

    from codec.errors import CodecError

    try:
        return int(main() or 0)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except (CodecError, OSError, ValueError, KeyError, ZeroDivisionError, json.JSONDecodeError,
            subprocess.CalledProcessError) as err:
        text = str(err).strip().splitlines()
        print(f"{name}: error: {text[0] if text else type(err).__name__}", file=sys.stderr)
        return 1


def timed(function: Callable, *args, **kwargs):
    """Call ``function`` and return (result, seconds)."""
    import time

    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start
