"""The resume cache: one JSON line per evaluated (codec settings, quality, image content) point."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def point_key(settings: str, quality: float, image_sha256: str) -> str:
    """Cache key of a point: hash of the codec settings, the quality and the image file's SHA-256."""
    codec_hash = hashlib.sha256(settings.encode()).hexdigest()[:16]
    return f"{codec_hash}|{format_quality(quality)}|{image_sha256}"


def format_quality(quality: float) -> str:
    """Canonical text of a quality value (``30``, ``2.5``)."""
    return f"{float(quality):g}"


class ResultStore:
    """Append-only JSONL file of results; unreadable lines (an interrupted write) are ignored."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._records: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            text = self.path.read_text(encoding="utf-8")
            for line in text.splitlines():
                try:
                    record = json.loads(line)
                    self._records[record["key"]] = record
                except (ValueError, KeyError, TypeError):
                    continue
            if text and not text.endswith("\n"):
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
