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
import struct
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from codec.errors import CodecError, InputError
from codec.fileio import atomic_write
from codec.models import ARCHITECTURES, VariableRateModel

#: Largest integer a weights file's config may hold (widths, block counts, levels): far above
#: any trained model's, low enough that a forged config cannot ask for an unbounded allocation.
MAX_CONFIG_INTEGER = 1024


def check_device(device: str | torch.device) -> torch.device:
    """The torch device a name means; InputError if unknown or if CUDA is asked for but absent."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device {device!r}: use 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' requested but no CUDA GPU is available")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"unsupported device {device!r}: use 'cpu' or 'cuda'")
    return dev


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


def round_parameters_to_half(model: VariableRateModel) -> None:
    """Round every parameter to the nearest float16 value, in place (kept as float32), so that
    :func:`save_weights` with ``half`` stores exactly this model; InputError if one overflows.
    The buffers (CDF tables, the scale table) are left alone."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            rounded = parameter.to(torch.float16)
            if not bool(torch.isfinite(rounded).all()):
                raise InputError(f"parameter {name} does not fit float16 (|value| > 65504): export it with --float32")
            parameter.copy_(rounded.to(parameter.dtype))


def save_weights(model: VariableRateModel, path: str | os.PathLike, architecture: str, config: dict,
                 extra: dict | None = None, half: bool = False) -> str:
    """Update the CDF tables and write the weights atomically; returns the file's SHA-256.

    ``half``: store the parameters as float16 (half the file; call :func:`round_parameters_to_half`
    first, so that the tables are built for the stored values). Loading casts them back to float32."""
    model.update(force=True)
    parameters = {name for name, _ in model.named_parameters()}
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.to(torch.float16) if k in parameters and v.is_floating_point() else v for k, v in state.items()}
    metadata = {"architecture": architecture, "config": json.dumps(config, sort_keys=True)}
    metadata.update({k: str(v) for k, v in (extra or {}).items()})
    return write_safetensors(state, path, metadata)


def write_safetensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str]) -> str:
    """Write ``tensors`` and ``metadata`` as a safetensors file, atomically and byte-for-byte the
    same for the same input (:func:`canonical_safetensors`); returns its SHA-256."""
    blob = canonical_safetensors(save(tensors, metadata=metadata))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(blob))
    return hashlib.sha256(blob).hexdigest()


def canonical_safetensors(blob: bytes) -> bytes:
    """``blob`` (a safetensors file) with its JSON header's keys sorted: safetensors writes the
    metadata in a random order, and the same weights must always make the same file, since the
    file's hash names the weights in every bitstream. The tensor data is left as it is."""
    (length,) = struct.unpack("<Q", blob[:8])
    header = json.dumps(json.loads(blob[8:8 + length]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # safetensors aligns the data to 8 bytes
    return struct.pack("<Q", len(header)) + header + blob[8 + length:]


def first_non_finite(tensors: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor holding a NaN or an infinity, or None."""
    return next((key for key, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())),
                None)


def load_weights(path: str | os.PathLike, device: str = "cpu") -> VariableRateModel:
    """Build the model a weights file describes and load it, in eval mode, on ``device``.

    Every way a file can be unusable (not safetensors, unknown architecture, a config the
    architecture does not take, tensors of other names or shapes) is one InputError.
    """
    from codec.zoo import WEIGHTS_DIR, describe

    target = check_device(device)
    entry = describe(path)
    _check_config_integers(path, entry.config)
    if Path(path).resolve().parent != WEIGHTS_DIR.resolve() and not _within_zoo_sizes(entry.config):
        _check_tensor_shapes(path, entry.architecture, entry.config)
    try:
        model = build_model(entry.architecture, entry.config)
    except (TypeError, ValueError, RuntimeError) as err:
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
    _check_entropy_tables(path, model)
    model.weights_hash = entry.weights_hash
    return model.eval().to(target)


def _config_integers(config: dict) -> dict[str, int]:
    """The integer settings of a config (widths, block counts, levels; not its flags)."""
    return {key: value for key, value in config.items() if isinstance(value, int) and not isinstance(value, bool)}


def _check_config_integers(path: str | os.PathLike, config: dict) -> None:
    """InputError if a config integer is negative or above :data:`MAX_CONFIG_INTEGER`."""
    for key, value in _config_integers(config).items():
        if not 0 <= value <= MAX_CONFIG_INTEGER:
            raise InputError(f"{path}: config {key} = {value} is outside 0..{MAX_CONFIG_INTEGER}")


def _within_zoo_sizes(config: dict) -> bool:
    """Whether every integer of ``config`` is a setting some weights of the zoo have, and no
    larger: such a model is no larger than the zoo's largest, so building it for real before
    the tensors are compared costs little. Weights trained from the repository's configs pass."""
    from codec.zoo import all_versions

    largest: dict[str, int] = {}
    for entry in all_versions():
        for key, value in _config_integers(entry.config).items():
            largest[key] = max(largest.get(key, 0), value)
    return all(key in largest and value <= largest[key] for key, value in _config_integers(config).items())


def _check_tensor_shapes(path: str | os.PathLike, architecture: str, config: dict) -> None:
    """InputError unless the file holds exactly the tensors (names, shapes) the config builds.

    The model is built on the ``meta`` device, so nothing is allocated before the file is known
    to hold every weight the config asks for (a forged config could ask for terabytes). That
    costs about a second and 0.15 GB once per process (torch imports its meta kernels), so
    the weights shipped in the package, and configs within the zoo's sizes, skip it. The entropy models' table buffers are sized by
    the file (compressai's layout), so only their presence is checked. An architecture that
    cannot be built on ``meta`` (compressai's GDN makes a CPU buffer) is left to
    ``load_state_dict``; its config integers are bounded all the same.
    """
    try:
        with torch.device("meta"):
            skeleton = build_model(architecture, config)
    except InputError:
        raise InputError(f"{path}: its config does not fit architecture {architecture!r}") from None
    except RuntimeError:
        return
    expected = {key: tuple(t.shape) for key, t in skeleton.state_dict().items()}
    try:
        with safe_open(str(path), framework="pt") as f:
            found = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
        raise InputError(f"{path}: cannot read its tensors ({err})") from None
    missing, unexpected = sorted(expected.keys() - found.keys()), sorted(found.keys() - expected.keys())
    if missing or unexpected:
        what = f"no tensor {missing[0]}" if missing else f"an unexpected tensor {unexpected[0]}"
        raise InputError(f"{path}: its tensors do not match a {architecture} model ({what})")
    for key, shape in expected.items():
        if shape != found[key] and 0 not in shape:
            raise InputError(f"{path}: its tensors do not match a {architecture} model "
                             f"(tensor {key} has shape {list(found[key])}, the config makes {list(shape)})")


def _check_entropy_tables(path: str | os.PathLike, model: VariableRateModel) -> None:
    """InputError unless every entropy model's CDF tables are valid (what the coders require)."""
    from compressai.entropy_models import EntropyBottleneck, GaussianConditional

    from codec.entropy.compressai_models import entropy_tables

    for name, module in model.named_modules():
        if isinstance(module, (EntropyBottleneck, GaussianConditional)):
            try:
                entropy_tables(module)
            except (RuntimeError, ValueError) as err:
                raise InputError(f"{path}: the tables of {name} are not usable ({err})") from None
