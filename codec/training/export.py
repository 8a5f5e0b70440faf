"""Turn a training checkpoint into shipped weights, with a model card, if it is better.

``codec export CHECKPOINT WEIGHTS`` writes safetensors weights (the CDF tables included) and
a Markdown model card beside them. With ``--if-better`` it first codes the run's held-out
training images with the checkpoint and with the weights already at WEIGHTS, and writes
only when the checkpoint's BD-rate against them is negative; the weights it replaces stay
in the zoo as ``NAME@HASH.safetensors``, so files coded with them still decode.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from codec.errors import InputError
from codec.models.weights import build_model, first_non_finite, load_weights, round_parameters_to_half, save_weights
from codec.training.trainer import read_checkpoint


def write_model_card(path: Path, state: dict, digest: str, selection: str = "", half: bool = False) -> None:
    """A Markdown model card beside the weights: what, how trained, on what, how long."""
    history = state.get("history", [])
    t = state.get("train_config", {})
    total = sum(seg["seconds"] for seg in history)
    lines = [
        f"# Model card: {path.stem}", "",
        f"- Architecture: `{state['architecture']}` with config `{json.dumps(state['model_config'], sort_keys=True)}`",
        f"- Weights: `{path.name}`, SHA-256 `{digest}`" + (" (parameters stored as float16)" if half else ""),
        f"- Training data: `{state.get('data', '?')}` (random {t.get('crop', '?')}px crops with flips; "
        f"{t.get('holdout', '?')} images held out for validation; never Kodak)",
        f"- Objective: lambda(q) * 255^2 * MSE + bpp, q uniform over the quality range; Adam "
        f"(lr {t.get('lr', '?')}, cosine to {t.get('lr_min', '?')}), batch {t.get('batch_size', '?')}; "
        "compressai auxiliary loss for the bottleneck quantiles",
        f"- Steps: {state['step']}; training time {total / 60:.1f} min over {len(history)} segment(s)",
    ]
    if selection:
        lines.append(f"- Selection: {selection}")
    lines += ["", "| steps | minutes | hardware | command |", "| --- | --- | --- | --- |"]
    for seg in history:
        lines.append(f"| {seg['start_step']}-{seg['end_step']} | {seg['seconds'] / 60:.1f} | {seg['hardware']} | "
                     f"`{seg['command']}` |")
    lines += ["", "Rate-distortion results on Kodak (real files): see `results/kodak/` and the README.", ""]
    path.with_suffix(".md").write_text("\n".join(lines))


def holdout_images(state: dict, data: str | None = None) -> list:
    """The held-out training images of the run a checkpoint belongs to (full size, uint8)."""
    from codec.training.data import list_images, load_images, refuse_evaluation_images, split_holdout

    folder = data or state.get("data")
    if not folder:
        raise InputError("the checkpoint does not name its training data: pass --data")
    files = list_images(folder)
    refuse_evaluation_images(files)
    _, held_out = split_holdout(files, state.get("train_config", {}).get("holdout", 8))
    images, _ = load_images(held_out, 64, progress=False)
    return images


def export(checkpoint: str, weights: str, if_better: bool = False, data: str | None = None,
           against: str | None = None, half: bool = True) -> tuple[bool, str]:
    """Write ``weights`` from ``checkpoint``; returns (written, a one-line account).

    ``if_better``: only if the checkpoint beats, on the run's held-out images, the weights
    already at ``weights`` (or ``against``, e.g. the model a new family extends). ``half``:
    the parameters are rounded to float16 first, and the comparison is of those, so what is
    selected is what is stored (half the file; on `walloc` the rounding moved the held-out
    BD-rate by 0.01 %, docs/training.md)."""
    from codec.training.selection import SELECTION_QUALITIES, code_images, curve_bd_rate
    from codec.fileio import file_sha256

    state = read_checkpoint(checkpoint)
    try:
        model = build_model(state["architecture"], state["model_config"])
        model.load_state_dict(state["model"])
    except (TypeError, ValueError, KeyError, RuntimeError) as err:
        first = (str(err).strip().splitlines() or ["?"])[0]
        raise InputError(f"{checkpoint}: its weights do not build a {state['architecture']} model ({first})") from None
    broken = first_non_finite(model.state_dict())
    if broken is not None:
        raise InputError(f"{checkpoint}: tensor {broken} holds NaN or infinite values (a diverged run?)")
    if half:
        round_parameters_to_half(model)
    model.eval()
    target = Path(weights)
    reference = Path(against) if against else target
    selection = ""
    if against and not reference.exists():
        raise InputError(f"no weights at {reference} to compare with")
    if if_better and reference.exists():
        current = load_weights(reference)
        images = holdout_images(state, data)
        qualities = [q for q in SELECTION_QUALITIES if q <= model.quality_range[1]]
        try:
            change = curve_bd_rate(code_images(current, images, qualities), code_images(model, images, qualities))
        except ValueError as err:
            raise InputError(f"cannot compare {checkpoint} with {reference}: {err}") from None
        selection = (f"BD-rate {change:+.2f} % against {'the current weights' if reference == target else reference.name} "
                     f"(sha256 {file_sha256(reference)[:8]}) "
                     f"on the {len(images)} held-out training images, qualities {qualities[0]:g}-{qualities[-1]:g}")
        if change >= 0:
            return False, f"not written: {selection}"
    if if_better and target.exists():
        keep = target.with_name(f"{target.stem}@{file_sha256(target)[:8]}{target.suffix}")
        shutil.copy2(target, keep)
        if target.with_suffix(".md").exists():
            shutil.copy2(target.with_suffix(".md"), keep.with_suffix(".md"))
    digest = save_weights(model, target, state["architecture"], state["model_config"],
                          {"step": state["step"], "history": json.dumps(state.get("history", []))}, half=half)
    write_model_card(target, state, digest, selection, half)
    return True, f"wrote {target} and its model card (step {state['step']}, sha256 {digest[:16]}...)" + \
        (f"; {selection}" if selection else "")


__all__ = ["export", "holdout_images", "read_checkpoint", "write_model_card"]
