"""Atomic file writes: a failure never leaves a partial or temporary file behind."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from codec.errors import InputError


def _umask_permissions(path: str) -> None:
    """Give a mkstemp file (mode 0600) the permissions a plain ``open`` would (0666 & ~umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``; on failure no file is left behind."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"output folder {directory} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        _umask_permissions(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text atomically (newlines as given)."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8", newline=""))
