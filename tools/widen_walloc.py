"""Widen a walloc decoder (more channels, more residual blocks) or its hyperprior (more
channels in ``h_a`` and ``h_s``) without changing what it codes: an --init for training a
larger model from shipped weights (docs/training.md).

    python tools/widen_walloc.py codec/zoo/weights/walloc.safetensors /tmp/walloc-wide.safetensors \\
        --decoder-channels 128 [--decoder-blocks 4] [--hyper-channels 128]

Every old weight is kept. A new channel is computed from the old ones by small random weights,
and no old channel (nor the decoder's output) reads a new one yet: those weights are zero.
A new residual block starts with a random first convolution and a zero second one, so it
adds nothing. The widened model therefore decodes exactly as the old one at step 0, and
training can grow the new channels, since each zero weight sits between a random one and a
gradient. The result keeps the input's metadata (step, training history) with the new config.
"""
from __future__ import annotations

import argparse
import json
import re

import torch
from safetensors import safe_open

from codec.models.weights import build_model, write_safetensors

NEW_WEIGHT_SCALE = 0.5  # the new rows' standard deviation, relative to the old rows' own


def _grown(old: torch.Tensor, shape: torch.Size, generator: torch.Generator, outputs: int = 0) -> torch.Tensor:
    """``old`` embedded in a tensor of ``shape``: old outputs keep their weights and read nothing
    new (zeros), new outputs of a weight are random, new bias entries zero. ``outputs`` is the
    dimension of the output channels (1 for a transposed convolution's weight)."""
    new = torch.zeros(shape, dtype=old.dtype)
    new[tuple(slice(0, n) for n in old.shape)] = old
    if old.dim() > 1 and shape[outputs] > old.shape[outputs]:
        std = NEW_WEIGHT_SCALE * float(old.std())
        rows = (slice(None),) * outputs + (slice(old.shape[outputs], None),)
        new[rows] = torch.randn(new[rows].shape, generator=generator, dtype=old.dtype) * std
    return new


def widen(tensors: dict[str, torch.Tensor], config: dict, channels: int, blocks: int, seed: int = 0,
          hyper_channels: int | None = None) -> tuple[dict, dict]:
    """The tensors and config of the widened walloc (see the module docstring)."""
    hyper_channels = config.get("hyper_channels", 64) if hyper_channels is None else hyper_channels
    if channels < config["decoder_channels"] or blocks < config["decoder_blocks"] \
            or hyper_channels < config.get("hyper_channels", 64):
        raise SystemExit("widen_walloc: the decoder and the hyperprior can only grow (channels and blocks)")
    wide_config = dict(config, decoder_channels=channels, decoder_blocks=blocks, hyper_channels=hyper_channels)
    model = build_model("walloc", wide_config)
    target = model.state_dict()
    transposed = {f"{name}.weight" for name, module in model.named_modules() if isinstance(module, torch.nn.ConvTranspose2d)}
    generator = torch.Generator().manual_seed(seed)
    old_blocks = config["decoder_blocks"]
    out = {}
    for key, reference in target.items():
        # The decoder's body: conv (0), activation (1), blocks (2 .. blocks+1), output conv.
        found = re.fullmatch(r"decoder\.body\.(\d+)\.(.*)", key)
        source = key
        if found and int(found.group(1)) == blocks + 2:  # the output conv moved behind the new blocks
            source = f"decoder.body.{old_blocks + 2}.{found.group(2)}"
        if found and old_blocks + 2 <= int(found.group(1)) < blocks + 2:  # a new residual block
            if found.group(2).startswith("body.0.") and reference.dim() > 1:
                std = NEW_WEIGHT_SCALE * float(tensors["decoder.body.2.body.0.weight"].std())
                out[key] = torch.randn(reference.shape, generator=generator) * std
            else:
                out[key] = torch.zeros_like(reference)
            continue
        old = tensors[source]
        grows = key.startswith(("decoder.", "h_a.", "h_s.")) and old.shape != reference.shape
        out[key] = _grown(old, reference.shape, generator, int(key in transposed)) if grows \
            else old.clone()  # CDF tables keep their size
    return out, wide_config


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", help="a walloc weights file")
    p.add_argument("out", help="where to write the widened weights")
    p.add_argument("--decoder-channels", type=int, default=None, help="new width (default: unchanged)")
    p.add_argument("--decoder-blocks", type=int, default=None, help="new number of residual blocks (default: unchanged)")
    p.add_argument("--hyper-channels", type=int, default=None, help="new width of h_a and h_s (default: unchanged)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    with safe_open(args.weights, "pt") as f:
        metadata = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if metadata.get("architecture") != "walloc":
        raise SystemExit(f"widen_walloc: {args.weights} is not a walloc weights file")
    config = json.loads(metadata["config"])
    channels = config["decoder_channels"] if args.decoder_channels is None else args.decoder_channels
    blocks = config["decoder_blocks"] if args.decoder_blocks is None else args.decoder_blocks
    wide, wide_config = widen(tensors, config, channels, blocks, args.seed, args.hyper_channels)
    metadata["config"] = json.dumps(wide_config, sort_keys=True)
    write_safetensors(wide, args.out, metadata)
    print(f"{args.out}: decoder {config['decoder_channels']} -> {channels} channels, "
          f"{config['decoder_blocks']} -> {blocks} blocks, hyperprior {config.get('hyper_channels', 64)} -> "
          f"{wide_config['hyper_channels']} channels")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
