"""Save and load model weights as safetensors, with the architecture in the metadata.

A weights file is self-describing: its metadata holds ``architecture`` (a key of
:data:`codec.models.ARCHITECTURES`) and ``config`` (JSON keyword arguments), so loading
needs no pickle and no code outside the package. The CDF tables of the entropy models are
stored too, so the encoder and decoder always code with bit-identical tables.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from codec.errors import CodecError
from codec.fileio import atomic_write
from codec.models import ARCHITECTURES, VariableRateHyperprior


def build_model(architecture: str, config: dict) -> VariableRateHyperprior:
    """Instantiate an architecture from its config (keyword arguments)."""
    if architecture not in ARCHITECTURES:
        raise CodecError(f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
    kwargs = dict(config)
    if "lambdas" in kwargs:
        kwargs["lambdas"] = tuple(kwargs["lambdas"])
    return ARCHITECTURES[architecture](**kwargs)


def save_weights(model: VariableRateHyperprior, path: str | os.PathLike, architecture: str, config: dict, extra: dict | None = None) -> str:
    """Update the CDF tables and write the weights atomically; returns the file's SHA-256."""
    model.update(force=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    metadata = {"architecture": architecture, "config": json.dumps(config, sort_keys=True)}
    metadata.update({k: str(v) for k, v in (extra or {}).items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=metadata))
    return file_sha256(path)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata dictionary of a safetensors file."""
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def load_weights(path: str | os.PathLike, device: str = "cpu") -> VariableRateHyperprior:
    """Build the model a weights file describes and load it, in eval mode, on ``device``."""
    try:
        metadata = read_metadata(path)
        architecture = metadata["architecture"]
        config = json.loads(metadata["config"])
    except FileNotFoundError:
        raise CodecError(f"weights file not found: {path}") from None
    except (KeyError, ValueError, OSError) as err:
        raise CodecError(f"{path} is not a valid weights file ({err})") from None
    model = build_model(architecture, config)
    model.load_state_dict(load_file(str(path)))
    model.weights_hash = bytes.fromhex(file_sha256(path))[:8]
    return model.eval().to(torch.device(device))
