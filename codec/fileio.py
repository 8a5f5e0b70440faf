"""Atomic, durable file writes: a failure never leaves a partial file behind.

The data goes to a temporary file ``.NAME.XXXXXXXX.tmp`` in the target's folder, which is
flushed to disk (fsync), renamed onto the target, and the folder fsynced, so a finished
output survives a crash. A process killed mid-write (SIGKILL, power loss) can leave its
temporary file behind: the next write of the same target removes such files once they are
older than :data:`STALE_SECONDS`.
"""
from __future__ import annotations

import glob
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

from codec.errors import InputError


def _umask_permissions(path: str) -> None:
    """Give a mkstemp file (mode 0600) the permissions a plain ``open`` would (0666 & ~umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


#: Age after which a leftover temporary file of ours is taken to belong to a dead writer.
STALE_SECONDS = 3600


def _fsync(path: str | os.PathLike, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete temporary files that an interrupted write of ``path`` left (older than STALE_SECONDS)."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    removed = []
    now = time.time()
    for leftover in directory.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if now - leftover.stat().st_mtime > STALE_SECONDS:
                leftover.unlink()
                removed.append(leftover)
        except OSError:
            continue  # another process removed or renamed it
    return removed


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)``, fsync, then rename onto ``path``; on failure no file is left behind."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"output folder {directory} does not exist")
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        _umask_permissions(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(directory, directory=True)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text atomically (newlines as given)."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8", newline=""))


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's content (cached per path, size and modification time)."""
    stat = os.stat(path)
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@cache
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: File name extensions taken as images when a folder is listed.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm")


def list_images(folder: str | os.PathLike, recursive_fallback: bool = False,
                suffixes: Iterable[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Files with one of ``suffixes`` (lower case, with the dot) directly inside ``folder``,
    sorted by name, hidden (dot) files left out; with ``recursive_fallback``, those of its
    sub-folders (hidden ones skipped) when it has none."""
    folder = Path(folder)
    wanted = {s.lower() for s in suffixes}
    found = sorted(p for p in folder.iterdir()
                   if not p.name.startswith(".") and p.suffix.lower() in wanted and p.is_file())
    if not found and recursive_fallback:
        found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in wanted
                       and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    return found
