"""The resume cache: one JSON line per evaluated (codec settings, quality, image content) point.

It lives outside the results folder (default ``.cache/eval/<dataset>.jsonl``, see
:func:`default_cache_path`), so that published results re-run from a clean checkout really are
recomputed, and a committed results folder never carries a cache.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any


#: Folder of the default cache files, relative to the current directory (ignored by git: /.cache/).
DEFAULT_CACHE_DIR = Path(".cache") / "eval"


def default_cache_path(dataset_name: str) -> Path:
    """``.cache/eval/<dataset name>.jsonl`` relative to the current directory.

    Two datasets with the same name share a file; that is safe, as keys include each image's
    content hash.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset_name).strip("._") or "dataset"
    return DEFAULT_CACHE_DIR / f"{safe}.jsonl"


def point_key(settings: str, quality: float, image_sha256: str) -> str:
    """Cache key of a point: hash of the codec settings, the quality and the image file's SHA-256."""
    codec_hash = hashlib.sha256(settings.encode()).hexdigest()[:16]
    return f"{codec_hash}|{format_quality(quality)}|{image_sha256}"


def format_quality(quality: float) -> str:
    """Canonical text of a quality value (``30``, ``2.5``)."""
    return f"{float(quality):g}"


class ResultStore:
    """Append-only JSONL file of results; unreadable lines (an interrupted write) are ignored.

    ``path=None``: results are kept in memory only (``--no-cache``). ``fresh=True``: the records
    already in the file are not read (``--fresh``); new ones are appended and, being later in the
    file, replace the old ones of the same key on the next run.
    """

    def __init__(self, path: Path | None, fresh: bool = False) -> None:
        self.path = None if path is None else Path(path)
        self._records: dict[str, dict[str, Any]] = {}
        if self.path is None or not self.path.is_file():
            return
        if fresh:
            with open(self.path, "rb") as f:
                size = f.seek(0, 2)
                truncated = size > 0 and f.seek(size - 1) >= 0 and f.read(1) != b"\n"
        else:
            text = self.path.read_text(encoding="utf-8")
            for line in text.splitlines():
                try:
                    record = json.loads(line)
                    self._records[record["key"]] = record
                except (ValueError, KeyError, TypeError):
                    continue
            truncated = bool(text) and not text.endswith("\n")
        if truncated:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write("\n")  # so the next record does not join the truncated line

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored record of ``key``, or None."""
        return self._records.get(key)

    def add(self, record: dict[str, Any]) -> None:
        """Store a record (it must have a ``key``) and append it to the file at once."""
        self._records[record["key"]] = record
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
