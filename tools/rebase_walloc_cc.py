"""Join a new walloc's weights with the context transforms of a walloc-cc: an --init for
retraining the context on the new latents (docs/training.md).

    python tools/rebase_walloc_cc.py codec/zoo/weights/walloc.safetensors \\
        codec/zoo/weights/walloc-cc.safetensors /tmp/walloc-cc-rebased.safetensors

Every tensor of the walloc file (the transforms, gains, hyperprior and bottleneck, an encoder
body if it has one) comes from it; the rest (the context transforms) from the walloc-cc file.
The result carries the walloc-cc file's metadata with the walloc file's step, and its config
with the walloc file's values for walloc's keys (a widened decoder, tools/widen_walloc.py; an
encoder body, configs/walloc-encoder-body.json).
"""
from __future__ import annotations

import argparse
import json

from safetensors import safe_open

from codec.models.weights import write_safetensors


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("walloc")
    p.add_argument("walloc_cc")
    p.add_argument("out")
    args = p.parse_args()
    from codec.zoo import describe

    for path, architecture in ((args.walloc, "walloc"), (args.walloc_cc, "walloc-cc")):
        found = describe(path).architecture  # InputError for a missing or unreadable file
        if found != architecture:
            raise ValueError(f"{path} is a {found} weights file, not {architecture} (arguments: WALLOC WALLOC_CC OUT)")
    if not args.out.endswith(".safetensors"):
        raise ValueError(f"{args.out}: the rebased weights are written as .safetensors")
    with safe_open(args.walloc, "pt") as base, safe_open(args.walloc_cc, "pt") as cc:
        base_keys = set(base.keys())
        tensors = {k: base.get_tensor(k) for k in base_keys}
        tensors.update({k: cc.get_tensor(k) for k in cc.keys() if k not in base_keys})
        metadata = dict(cc.metadata() or {})
        metadata["step"] = (base.metadata() or {}).get("step", metadata.get("step", "0"))
        base_config = json.loads((base.metadata() or {}).get("config", "{}"))
        config = json.loads(metadata.get("config", "{}"))
        metadata["config"] = json.dumps({**config, **base_config}, sort_keys=True)
        shared = len(base_keys & set(cc.keys()))
    write_safetensors(tensors, args.out, metadata)
    print(f"{args.out}: {shared} tensors from {args.walloc}, {len(tensors) - shared} from {args.walloc_cc}")
    return 0


if __name__ == "__main__":
    from codec.cli._common import run_tool

    raise SystemExit(run_tool(main, "rebase_walloc_cc"))
