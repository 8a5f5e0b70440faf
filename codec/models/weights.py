"""Save and load model weights as safetensors, with the architecture in the metadata.

A weights file is self-describing: its metadata holds ``architecture`` (a key of
:data:`codec.models.ARCHITECTURES`) and ``config`` (JSON keyword arguments), so loading
needs no pickle and no code outside the package. The CDF tables of the entropy models are
stored too, so the encoder and decoder always code with bit-identical tables.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from codec.errors import CodecError, InputError
from codec.fileio import atomic_write
from codec.models import ARCHITECTURES, VariableRateModel


def build_model(architecture: str, config: dict) -> VariableRateModel:
    """Instantiate an architecture from its config (keyword arguments)."""
    if architecture not in ARCHITECTURES:
        raise CodecError(f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
    kwargs = dict(config)
    if "lambdas" in kwargs:
        kwargs["lambdas"] = tuple(kwargs["lambdas"])
    try:
        return ARCHITECTURES[architecture](**kwargs)
    except (TypeError, ValueError) as err:  # an unknown key or a value the architecture refuses
        raise InputError(f"bad {architecture} config: {err}") from None


def save_weights(model: VariableRateModel, path: str | os.PathLike, architecture: str, config: dict, extra: dict | None = None) -> str:
    """Update the CDF tables and write the weights atomically; returns the file's SHA-256."""
    model.update(force=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    metadata = {"architecture": architecture, "config": json.dumps(config, sort_keys=True)}
    metadata.update({k: str(v) for k, v in (extra or {}).items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=metadata))
    from codec.fileio import file_sha256

    return file_sha256(path)


def first_non_finite(tensors: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor holding a NaN or an infinity, or None."""
    return next((key for key, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())),
                None)


def load_weights(path: str | os.PathLike, device: str = "cpu") -> VariableRateModel:
    """Build the model a weights file describes and load it, in eval mode, on ``device``.

    Every way a file can be unusable (not safetensors, unknown architecture, a config the
    architecture does not take, tensors of other names or shapes) is one InputError.
    """
    from codec.zoo import describe

    entry = describe(path)
    try:
        model = build_model(entry.architecture, entry.config)
    except (TypeError, ValueError) as err:
        raise InputError(f"{path}: its config does not fit architecture {entry.architecture!r} ({err})") from None
    try:
        tensors = load_file(str(path))
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
        raise InputError(f"{path}: cannot read its tensors ({err})") from None
    broken = first_non_finite(tensors)
    if broken is not None:
        raise InputError(f"{path}: tensor {broken} holds NaN or infinite values")
    try:
        model.load_state_dict(tensors)
    except (RuntimeError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0]
        raise InputError(f"{path}: its tensors do not match a {entry.architecture} model ({first})") from None
    model.weights_hash = entry.weights_hash
    return model.eval().to(torch.device(device))
