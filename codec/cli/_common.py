"""Helpers shared by the subcommands: warnings on stderr, safe output paths, timing."""
from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from codec.errors import ConversionWarning, InputError


@contextmanager
def report_conversions(command: str) -> Iterator[None]:
    """Print every :class:`ConversionWarning` raised inside as one stderr line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConversionWarning)
        try:
            yield
        finally:
            for w in caught:
                if issubclass(w.category, ConversionWarning):
                    print(f"codec {command}: warning: {w.message}", file=sys.stderr)
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def check_output(input_path: str | os.PathLike, output_path: str | os.PathLike) -> None:
    """Refuse to write over the input file."""
    src, dst = Path(input_path), Path(output_path)
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise InputError(f"output {dst} is the input file; choose another name")
    if dst.is_dir():
        raise InputError(f"output {dst} is a folder; give a file name")


def add_device(parser) -> None:
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs (default cpu)")


def timed(function: Callable, *args, **kwargs):
    """Call ``function`` and return (result, seconds)."""
    import time

    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start
