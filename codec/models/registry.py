"""The models that ship inside the package, and loading them by name."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from codec.errors import CodecError
from codec.models.base import VariableRateHyperprior

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "zoo" / "weights"


@dataclass(frozen=True)
class ModelInfo:
    """What a shipped model is and which qualities it accepts."""

    name: str
    description: str
    quality_range: tuple[float, float]
    default_quality: float
    default_qualities: list[float] = field(default_factory=list)

    @property
    def weights_path(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.safetensors"

    @property
    def weights_exist(self) -> bool:
        return self.weights_path.is_file()


_MODELS = {
    info.name: info
    for info in (
        ModelInfo(
            "walloc",
            "wavelet packet (CDF 9/7, J=3) + linear encoder + hyperprior + residual decoder",
            (1.0, 6.0), 3.0, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        ),
        ModelInfo(
            "hyperprior",
            "Balle et al. 2018 mean-scale hyperprior (GDN), variable rate",
            (1.0, 6.0), 3.0, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        ),
    )
}

_cache: dict[tuple[str, str], VariableRateHyperprior] = {}
_lock = threading.Lock()


def available_models() -> list[ModelInfo]:
    """Every model this package knows, whether or not its weights are present."""
    return list(_MODELS.values())


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a model name; CodecError listing the known ones otherwise."""
    if name not in _MODELS:
        raise CodecError(f"unknown model {name!r}; available: {', '.join(_MODELS)}")
    return _MODELS[name]


def load_model(name: str, device: str = "cpu") -> VariableRateHyperprior:
    """Load a shipped model (cached per name and device), ready for compress/decompress."""
    from codec.models.weights import load_weights

    info = model_info(name)
    key = (name, str(device))
    with _lock:
        if key not in _cache:
            if not info.weights_exist:
                raise CodecError(f"weights of model {name!r} are missing ({info.weights_path})")
            model = load_weights(info.weights_path, device=device)
            model.name = name
            _cache[key] = model
        return _cache[key]
