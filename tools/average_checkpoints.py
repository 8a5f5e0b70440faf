"""Average the weights of runs that share a start: a "model soup" (Wortsman et al. 2022).

    python tools/average_checkpoints.py runs/walloc-b8b/last.pt runs/walloc-c320/last.pt \\
        --out /tmp/soup.pt
    codec export /tmp/soup.pt /tmp/soup/walloc.safetensors --if-better   # on a copy of the shipped file

Fine-tunes of one set of weights (other batch sizes, crops, seeds) usually stay in one basin
of the loss, so the mean of their weights can beat each of them. Every floating-point tensor
is averaged (with --weights, a weighted mean); integer tensors (the CDF tables, rebuilt by
``update`` before any coding) come from the first input. Inputs are training checkpoints
(``last.pt`` or snapshots) or safetensors weights of the same architecture and config; the
output is a checkpoint that ``codec export`` reads, with the metadata (history, data, training
config) of the first checkpoint among the inputs and the largest step.
"""
from __future__ import annotations

import argparse
import sys

import torch

from codec.errors import CodecError
from codec.fileio import atomic_write
from codec.training.trainer import read_checkpoint
from codec.zoo import describe


def read_tensors(path: str) -> tuple[dict, dict]:
    """(state dict, checkpoint metadata) of a checkpoint or a safetensors weights file."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        entry = describe(path)
        info = {"step": int(entry.metadata.get("step", 0)), "model_config": entry.config,
                "architecture": entry.architecture}
        return load_file(path), info
    state = read_checkpoint(path)
    return state["model"], state


def average(paths: list[str], weights: list[float]) -> dict:
    """A checkpoint whose model is the weighted mean of the inputs' floating-point tensors."""
    states, infos = zip(*(read_tensors(p) for p in paths))
    first = infos[0]
    for path, info, state in zip(paths[1:], infos[1:], states[1:]):
        if (info.get("architecture"), info.get("model_config")) != (first.get("architecture"), first.get("model_config")):
            raise ValueError(f"{path} is another architecture or config than {paths[0]}")
        if set(state) != set(states[0]):
            raise ValueError(f"{path} has other tensors than {paths[0]}")
    total = sum(weights)
    model = {}
    for name, tensor in states[0].items():
        if tensor.is_floating_point():
            model[name] = sum(w * s[name].double() for w, s in zip(weights, states)).div(total).to(tensor.dtype)
        else:
            model[name] = tensor.clone()
    base = next((info for info in infos if "history" in info), first)
    out = {k: v for k, v in base.items() if k not in ("model", "optimizer", "aux_optimizer", "scheduler", "torch_rng")}
    out.update(model=model, step=max(int(info.get("step", 0)) for info in infos),
               architecture=first["architecture"], model_config=first["model_config"])
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="+", help="checkpoints (.pt) or weights (.safetensors) of one architecture")
    p.add_argument("--out", required=True, help="checkpoint to write (.pt)")
    p.add_argument("--weights", type=float, nargs="+", help="one weight per input (default: equal)")
    args = p.parse_args()
    if not args.out.endswith(".pt"):  # it is a training checkpoint, which `codec export` reads as .pt only
        print(f"error: --out {args.out} must end in .pt (a checkpoint; `codec export` makes the weights)", file=sys.stderr)
        return 2
    weights = args.weights or [1.0] * len(args.inputs)
    if len(weights) != len(args.inputs) or not all(0 <= w < float("inf") for w in weights) or sum(weights) <= 0:
        print("error: --weights needs one finite, non-negative weight per input, not all zero", file=sys.stderr)
        return 2
    try:
        state = average(args.inputs, weights)
        atomic_write(args.out, lambda tmp: torch.save(state, tmp))
    except (CodecError, OSError, KeyError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.out}: mean of {len(args.inputs)} inputs (weights {weights}), step {state['step']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
