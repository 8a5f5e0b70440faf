"""The model catalogue: every weights file in ``codec/zoo/weights/``, described by its own metadata.

A weights file is a safetensors file whose metadata names its ``architecture`` and its
``config`` (see :mod:`codec.models.weights`). Everything else the catalogue says about a
model is derived from those two fields, so there is one source of truth:

* the model's **name** is the file's stem (``walloc.safetensors`` is ``walloc``);
* its **description** and **default quality** belong to the architecture (:data:`FAMILIES`);
* its **quality range** is ``1 .. number of trained levels`` (the config's ``lambdas``);
* its **hash** (first 8 bytes of the file's SHA-256) is what a bitstream records, so a file
  coded with an older version of a model is decoded by the weights whose hash it names,
  which ship as ``NAME@HASH.safetensors`` beside the current ones.

This module reads the safetensors header itself (8-byte length + JSON) and never imports
torch, so listing models or describing a bitstream costs milliseconds. :func:`load_model`
builds the network (that needs torch) and caches it per weights file and device.
"""
from __future__ import annotations

import json
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codec.errors import InputError, shown
from codec.fileio import file_sha256

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: Measured BD-rates of shipped weights, keyed by SHA-256 prefix (written by tools/bd_table.py --zoo).
MEASURED_FILE = Path(__file__).resolve().parent / "measured.json"

#: Levels of the rate-distortion trade-off a model is trained for when its config names none.
DEFAULT_LEVELS = 6
#: A safetensors header larger than this is not one we wrote (ours are a few kB).
MAX_HEADER_BYTES = 1 << 24


@dataclass(frozen=True)
class Family:
    """What every model of one architecture has in common."""

    description: str
    default_quality: float

    def default_in(self, quality_range: tuple[float, float]) -> float:
        """The family's default quality, clamped to a model's range."""
        low, high = quality_range
        return min(max(self.default_quality, low), high)


#: The model the command line codes with when none is named: the fastest shipped one.
DEFAULT_MODEL = "walloc"

#: Architecture name -> family facts (the classes live in :mod:`codec.models`).
FAMILIES = {
    "walloc": Family("wavelet packet (CDF 9/7) + (nearly) linear encoder + hyperprior + residual decoder", 3.0),
    "walloc-cc": Family("walloc's transforms + context entropy model (checkerboard / channel slices)", 3.0),
    "hyperprior": Family("Balle et al. 2018 mean-scale hyperprior (GDN), variable rate", 3.0),
}


@dataclass(frozen=True)
class ModelEntry:
    """One weights file and what its metadata says about the model."""

    name: str
    path: Path
    architecture: str
    config: dict[str, Any]
    metadata: dict[str, str]

    @property
    def family(self) -> Family:
        return FAMILIES[self.architecture]

    @property
    def description(self) -> str:
        return self.family.description

    @property
    def quality_range(self) -> tuple[float, float]:
        return 1.0, float(len(self.config.get("lambdas", ())) or DEFAULT_LEVELS)

    @property
    def default_quality(self) -> float:
        return self.family.default_in(self.quality_range)

    @property
    def sha256(self) -> str:
        return file_sha256(self.path)

    @property
    def measured(self) -> dict | None:
        """Measured BD-rates of these weights (``codec eval`` + ``tools/bd_table.py --zoo``), if any."""
        try:
            table = json.loads(MEASURED_FILE.read_text())
        except (OSError, ValueError):
            return None
        return table.get(self.sha256[:12])

    @property
    def weights_hash(self) -> bytes:
        """The 8 bytes a bitstream records to name these weights."""
        return bytes.fromhex(self.sha256)[:8]


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file; InputError when it is not one."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError("file too short")
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER_BYTES:
                raise ValueError("header length out of range")
            raw = f.read(length)
        if len(raw) != length:
            raise ValueError("truncated header")
        header = json.loads(raw)
        metadata = header.get("__metadata__", {}) if isinstance(header, dict) else None
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise ValueError("no string metadata")
    except FileNotFoundError:
        raise InputError(f"weights file not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"weights file {path} is a folder") from None
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is not a safetensors weights file ({err})") from None
    return metadata


def describe(path: str | os.PathLike, name: str | None = None) -> ModelEntry:
    """The catalogue entry of any weights file; InputError when its metadata is unusable."""
    path = Path(path)
    metadata = read_metadata(path)
    architecture = metadata.get("architecture")
    if architecture not in FAMILIES:
        raise InputError(f"{path}: unknown architecture {architecture!r} in its metadata "
                         f"(known: {', '.join(FAMILIES)})")
    try:
        config = json.loads(metadata.get("config", ""))
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise InputError(f"{path}: its metadata has no valid model config")
    return ModelEntry(name or model_name(path), path, architecture, config, metadata)


def model_name(path: str | os.PathLike) -> str:
    """The model name a weights file codes under: its stem up to any ``@``, limited to the
    characters and length a bitstream header allows (letters, digits, ``. _ -``, 32)."""
    stem = Path(path).stem.split("@")[0]
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in stem)
    return safe[:32] or "model"


def shipped_models() -> list[ModelEntry]:
    """The current version of every shipped model (``NAME.safetensors``), sorted by name."""
    return [describe(p) for p in sorted(WEIGHTS_DIR.glob("*.safetensors"), key=lambda p: p.stem) if "@" not in p.stem]


def all_versions() -> list[ModelEntry]:
    """Every shipped weights file, older versions (``NAME@HASH.safetensors``) included."""
    return [describe(p) for p in sorted(WEIGHTS_DIR.glob("*.safetensors"), key=lambda p: p.stem)]


def model_entry(name: str) -> ModelEntry:
    """The current version of a shipped model (``walloc``), or a kept older one by name and hash
    (``walloc@81a4d606``); InputError listing the known names otherwise."""
    for entry in shipped_models():
        if entry.name == name:
            return entry
    if "@" in name:
        for path in WEIGHTS_DIR.glob("*@*.safetensors"):
            if path.stem == name:
                return describe(path)
    known = ", ".join(e.name for e in shipped_models()) or "none installed"
    raise InputError(f"unknown model {name!r}; shipped: {known} (older versions as NAME@HASH, listed by "
                     "`codec models --all`), or pass a .safetensors weights file")


def find_version(name: str, weights_hash: bytes) -> ModelEntry | None:
    """The shipped weights of ``name`` whose hash is ``weights_hash``, current or older."""
    for entry in all_versions():
        if entry.name == name and entry.weights_hash == weights_hash:
            return entry
    return None


def entry_for(model: str | os.PathLike) -> ModelEntry:
    """A shipped model name or a path to a weights file (named after the shipped model it
    equals, if any, so that it codes exactly as that model does)."""
    text = str(model)
    if not text.endswith(".safetensors"):
        return model_entry(text)
    entry = describe(Path(text).expanduser())
    for shipped in all_versions():
        if shipped.weights_hash == entry.weights_hash and shipped.sha256 == entry.sha256:
            return shipped
    return entry


def check_quality(quality: Any, quality_range: tuple[float, float], name: str) -> float:
    """``quality`` as a float inside the model's range; InputError for anything else (a string,
    a bool, a number out of range or too large for a float, NaN)."""
    low, high = quality_range
    if isinstance(quality, (bool, str, bytes)):
        raise InputError(f"quality must be a number, got {shown(quality)}")
    try:
        value = float(quality)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"quality must be a number, got {shown(quality)}") from None
    if not low <= value <= high:
        raise InputError(f"quality {value:.10g} outside the range {low:g}..{high:g} of model {name!r}")
    return value


_loaded: dict[tuple, Any] = {}
_lock = threading.Lock()


def load_model(entry: ModelEntry, device: str = "cpu"):
    """The network of a catalogue entry, in eval mode on ``device`` (cached by path, device and
    the file's size and modification time, so a file rewritten in place is loaded again)."""
    from codec.models.weights import load_weights

    stat = entry.path.stat()
    key = (str(entry.path.resolve()), str(device), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    with _lock:
        if key not in _loaded:
            for stale in [k for k in _loaded if k[:2] == key[:2]]:  # the file was rewritten
                del _loaded[stale]
            net = load_weights(entry.path, device=device)
            net.name = entry.name
            _loaded[key] = net
        return _loaded[key]


__all__ = ["DEFAULT_MODEL", "FAMILIES", "Family", "MEASURED_FILE", "ModelEntry", "WEIGHTS_DIR", "all_versions", "describe", "entry_for",
           "check_quality", "find_version", "load_model", "model_entry", "model_name", "read_metadata", "shipped_models"]
