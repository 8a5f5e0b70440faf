#!/usr/bin/env python
"""Train a variable-rate model and export shipped weights.

    python tools/train.py train --config configs/walloc.json --data ../shared/data/train --out runs/walloc
    python tools/train.py train ... --resume            # continue from runs/walloc/last.pt
    python tools/train.py export runs/walloc/last.pt codec/zoo/weights/walloc.safetensors

Loss: lambda(q) * 255^2 * MSE + bpp with one quality q per sample drawn uniformly from the
model's continuous quality range (so every fractional quality is trained), Adam, and
compressai's auxiliary loss for the entropy bottleneck's quantiles on its own optimiser.
Checkpoints hold model, optimisers, scheduler, step and RNG states, so a resumed run
continues exactly. Validation codes held-out training images to real bitstreams.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codec.errors import CodecError  # noqa: E402
from codec.models import rd_loss  # noqa: E402
from codec.models.weights import build_model, save_weights  # noqa: E402
from codec.training.data import CropSampler, list_images, split_holdout  # noqa: E402


def load_config(path: str) -> dict:
    """Read a training config (architecture, model kwargs, train settings)."""
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as err:
        raise CodecError(f"cannot read config {path}: {err}") from None
    for key in ("architecture", "model", "train"):
        if key not in config:
            raise CodecError(f"config {path} lacks the key {key!r}")
    return config


def lr_factor(step: int, warmup: int, total: int, floor: float) -> float:
    """Linear warm-up, then cosine decay to ``floor`` (a fraction of the peak rate)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizers(model: torch.nn.Module, train: dict):
    """Main Adam over network weights, aux Adam over the bottleneck quantiles, and schedule."""
    main_params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    optimizer = torch.optim.Adam(main_params, lr=train["lr"])
    aux_optimizer = torch.optim.Adam(aux_params, lr=train["aux_lr"])
    floor = train.get("lr_min", train["lr"]) / train["lr"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, train.get("warmup_steps", 0), train["steps"], floor))
    return optimizer, aux_optimizer, scheduler


@torch.no_grad()
def validate(model, images: list[np.ndarray], qualities: list[float], size: int = 256) -> dict:
    """Real-bitstream bpp and PSNR on centre crops of held-out images, per quality."""
    model.eval()
    model.update(force=True)
    results = {}
    m = model.pad_multiple
    for q in qualities:
        bits = pixels = 0
        psnrs = []
        for im in images:
            h = min(size, im.shape[0]) // m * m
            w = min(size, im.shape[1]) // m * m
            if h == 0 or w == 0:
                continue
            top, left = (im.shape[0] - h) // 2, (im.shape[1] - w) // 2
            x = torch.from_numpy(np.ascontiguousarray(im[top:top + h, left:left + w])).permute(2, 0, 1)[None].float() / 255
            out = model.compress(x, q)
            x_hat = model.decompress(out["strings"], out["shape"], q)["x_hat"].clamp(0, 1)
            bits += 8 * sum(len(s[0]) for s in out["strings"])
            pixels += h * w
            mse = ((x_hat * 255).round() - x * 255).pow(2).mean().item()
            psnrs.append(10 * math.log10(255**2 / max(mse, 1e-10)))
        results[q] = (bits / max(pixels, 1), float(np.mean(psnrs)) if psnrs else float("nan"))
    model.train()
    return results


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint atomically (temp file + rename)."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    t = config["train"]
    if args.steps:
        t["steps"] = args.steps
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "last.pt"

    model = build_model(config["architecture"], config["model"])
    optimizer, aux_optimizer, scheduler = make_optimizers(model, t)
    rng = np.random.Generator(np.random.PCG64(args.seed))
    step = 0
    if args.resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if state["architecture"] != config["architecture"] or state["model_config"] != config["model"]:
            raise CodecError(f"checkpoint {ckpt_path} is of another model/config; use a new --out")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        aux_optimizer.load_state_dict(state["aux_optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        step = state["step"]
        print(f"resumed from {ckpt_path} at step {step}")

    files = list_images(args.data)
    train_files, holdout_files = split_holdout(files, t.get("holdout", 8))
    sampler = CropSampler(train_files, t["crop"])
    if sampler.skipped:
        print(f"skipped {len(sampler.skipped)} unreadable or small images: {', '.join(sampler.skipped[:5])}")
    holdout = CropSampler(holdout_files, 64, progress=False).images
    qmin, qmax = model.quality_range

    from tqdm import tqdm

    log_path = out / "log.csv"
    new_log = not log_path.exists()
    with open(log_path, "a", newline="") as log_file:
        log = csv.writer(log_file)
        if new_log:
            log.writerow(["step", "time", "loss", "bpp", "mse", "aux", "lr", "val"])
        bar = tqdm(total=t["steps"], initial=step, desc=f"train {config['architecture']}", unit="step")
        start = time.time()
        while step < t["steps"]:
            x = sampler.batch(t["batch_size"], rng)
            quality = torch.from_numpy(rng.uniform(qmin, qmax, size=x.shape[0]).astype(np.float32))
            result = rd_loss(model, x, quality)
            optimizer.zero_grad(set_to_none=True)
            result["loss"].backward()
            if t.get("clip_grad"):
                torch.nn.utils.clip_grad_norm_(model.parameters(), t["clip_grad"])
            optimizer.step()
            scheduler.step()
            aux = model.aux_loss()
            aux_optimizer.zero_grad(set_to_none=True)
            aux.backward()
            aux_optimizer.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{result['loss'].item():.3f}", bpp=f"{result['bpp'].item():.3f}")
            val = ""
            if step % t["validate_every"] == 0 or step == t["steps"]:
                try:
                    val = json.dumps({str(q): [round(b, 4), round(p, 3)] for q, (b, p) in
                                      validate(model, holdout, t["validate_qualities"]).items()})
                except ImportError as err:  # the compiled coder is not built
                    model.train()
                    val = f"skipped: {err}"
                tqdm.write(f"step {step} validation (bpp, PSNR): {val}")
            if step % 50 == 0 or val:
                log.writerow([step, round(time.time() - start, 1), result["loss"].item(), result["bpp"].item(),
                              result["mse"].item(), aux.item(), scheduler.get_last_lr()[0], val])
                log_file.flush()
            if step % t["checkpoint_every"] == 0 or step == t["steps"]:
                save_checkpoint(ckpt_path, {
                    "architecture": config["architecture"], "model_config": config["model"], "step": step,
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "aux_optimizer": aux_optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                })
        bar.close()
    return 0


def export(args: argparse.Namespace) -> int:
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    model = build_model(state["architecture"], state["model_config"])
    model.load_state_dict(state["model"])
    digest = save_weights(model, args.weights, state["architecture"], state["model_config"], {"step": state["step"]})
    print(f"wrote {args.weights} (step {state['step']}, sha256 {digest[:16]}...)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train (or resume) a model")
    p.add_argument("--config", required=True)
    p.add_argument("--data", default="../shared/data/train")
    p.add_argument("--out", required=True, help="run folder: last.pt checkpoint and log.csv")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--steps", type=int, default=0, help="override the config's total steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    p.set_defaults(func=train)
    p = sub.add_parser("export", help="write shipped safetensors weights from a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("weights")
    p.set_defaults(func=export)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (CodecError, OSError) as err:
        print(f"train: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
