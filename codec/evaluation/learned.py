"""Learned models, reached only through :mod:`codec.api` (encode to bytes, decode from bytes)."""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codec.errors import CodecError

@dataclass(frozen=True)
class ModelSpec:
    """A learned model to evaluate: its curve name, what ``codec.api`` gets, and its qualities."""

    name: str
    ref: str
    description: str
    settings: str
    quality_range: tuple[float, float]
    default_qualities: tuple[float, ...]
    effort: int = 0


def coder_available() -> bool:
    """Whether the compiled range coder needed for real encoding can be imported."""
    try:
        importlib.import_module("codec.entropy.rangecoder")
        return True
    except ImportError:
        return False


def require_coder() -> None:
    """Raise CodecError when the compiled range coder is missing."""
    if not coder_available():
        raise CodecError("learned models need the compiled range coder (codec._rangecoder), which is not "
                         "importable: build the package, or pass --models '' to evaluate baselines only")


def default_models() -> list[str]:
    """The shipped models."""
    from codec import zoo

    return [entry.name for entry in zoo.shipped_models()]


def model_spec(ref: str, device: str = "cpu", effort: int = 0) -> ModelSpec:
    """Describe a shipped model name or a ``.safetensors`` path; InputError if unusable.

    At an ``effort`` above 0 the curve is named ``NAME-effortN`` and its settings (the cache
    key) include the refinement schedule, so a changed schedule is recomputed."""
    from codec import zoo
    from codec.encoding.effort import schedule_for

    schedule = schedule_for(effort)
    spec = _model_spec(zoo, ref)
    if schedule is None:
        return spec
    return ModelSpec(f"{spec.name}-effort{effort}", spec.ref,
                     f"{spec.description}, encoder effort {effort} (latent refinement: {schedule})",
                     f"{spec.settings}|effort|{schedule}", spec.quality_range, spec.default_qualities, effort)


def _model_spec(zoo, ref: str) -> ModelSpec:

    entry = zoo.entry_for(Path(ref).expanduser() if ref.endswith(".safetensors") else ref)
    low, high = entry.quality_range
    qualities = tuple(float(q) for q in range(int(low), int(high) + 1))
    if entry.path.parent == zoo.WEIGHTS_DIR and "@" not in entry.path.stem:  # current shipped weights
        return ModelSpec(entry.name, entry.name, f"{entry.description} (weights sha256 {entry.sha256[:12]})",
                         f"model|{entry.sha256}", (low, high), qualities)
    return ModelSpec(entry.name, str(entry.path), f"learned model from {entry.path.name} (sha256 {entry.sha256[:12]})",
                     f"model|{entry.sha256}", (low, high), qualities)


def warm_up(spec: ModelSpec, device: str = "cpu") -> None:
    """Load the model before timing anything."""
    from codec import api

    api.resolve_model(spec.ref, device)


def code_image(spec: ModelSpec, rgb: np.ndarray, quality: float,
               device: str = "cpu") -> tuple[bytes, np.ndarray, float, float]:
    """Encode then decode one image: (file bytes, 8-bit RGB reconstruction, encode s, decode s)."""
    from codec import api

    start = time.perf_counter()
    data = api.encode(rgb, model=spec.ref, quality=quality, device=device, effort=spec.effort)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    image = api.decode(data, device=device, model=spec.ref)
    decode_s = time.perf_counter() - start
    return data, np.asarray(image.convert("RGB")), encode_s, decode_s
