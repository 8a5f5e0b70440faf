"""Learned models, reached only through :mod:`codec.api` (encode to bytes, decode from bytes)."""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codec.errors import CodecError, InputError

#: Qualities used for a ``.safetensors`` weights file when ``--qualities`` does not say.
PATH_MODEL_QUALITIES = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)


@dataclass(frozen=True)
class ModelSpec:
    """A learned model to evaluate: its curve name, what ``codec.api`` gets, and its qualities."""

    name: str
    ref: str
    description: str
    settings: str
    quality_range: tuple[float, float]
    default_qualities: tuple[float, ...]


def coder_available() -> bool:
    """Whether the compiled range coder needed for real encoding can be imported."""
    try:
        importlib.import_module("codec.rangecoder")
        return True
    except ImportError:
        return False


def require_coder() -> None:
    """Raise CodecError when the compiled range coder is missing."""
    if not coder_available():
        raise CodecError("learned models need the compiled range coder (codec._rangecoder), which is not "
                         "importable: build the package, or pass --models '' to evaluate baselines only")


def default_models() -> list[str]:
    """The shipped models whose weights are present."""
    from codec.models.registry import available_models

    return [info.name for info in available_models() if info.weights_exist]


def model_spec(ref: str, device: str = "cpu") -> ModelSpec:
    """Describe a shipped model name or a ``.safetensors`` path; InputError if unusable."""
    from codec import api
    from codec.models.registry import available_models, model_info
    from codec.models.weights import file_sha256

    if ref.endswith(".safetensors"):
        path = Path(ref).expanduser()
        if not path.is_file():
            raise InputError(f"model weights {path}: no such file")
        net = api.resolve_model(str(path), device)
        sha = file_sha256(path)
        return ModelSpec(path.stem, str(path), f"learned model from {path.name} (sha256 {sha[:12]})",
                         f"model|{sha}", tuple(net.quality_range), PATH_MODEL_QUALITIES)
    if ref not in {info.name for info in available_models()}:
        raise InputError(f"unknown model {ref!r}; shipped: {', '.join(i.name for i in available_models())}, "
                         f"or pass a path to a .safetensors file")
    info = model_info(ref)
    if not info.weights_exist:
        raise InputError(f"weights of model {ref!r} are missing ({info.weights_path})")
    sha = file_sha256(info.weights_path)
    return ModelSpec(ref, ref, f"{info.description} (weights sha256 {sha[:12]})", f"model|{sha}",
                     tuple(info.quality_range), tuple(info.default_qualities))


def warm_up(spec: ModelSpec, device: str = "cpu") -> None:
    """Load the model before timing anything."""
    from codec import api

    api.resolve_model(spec.ref, device)


def code_image(spec: ModelSpec, rgb: np.ndarray, quality: float,
               device: str = "cpu") -> tuple[bytes, np.ndarray, float, float]:
    """Encode then decode one image: (file bytes, 8-bit RGB reconstruction, encode s, decode s)."""
    from codec import api

    start = time.perf_counter()
    data = api.encode(rgb, model=spec.ref, quality=quality, device=device)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    image = api.decode(data, device=device, model=spec.ref)
    decode_s = time.perf_counter() - start
    return data, np.asarray(image.convert("RGB")), encode_s, decode_s
