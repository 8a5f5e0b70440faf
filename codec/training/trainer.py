"""Train a variable-rate model: ``codec train`` (shipping the weights is ``codec export``).

    codec train --config configs/walloc.json --data ../shared/data/train --out runs/walloc
    codec train ... --resume            # continue exactly from runs/walloc/last.pt
    codec train ... --init codec/zoo/weights/walloc.safetensors --steps N   # go on from shipped weights
    torchrun --nproc_per_node=8 -m codec train --config configs/walloc.json --out runs/walloc --device cuda --amp

Loss: lambda(q) * 255^2 * MSE + bpp with one quality q per sample drawn uniformly from the
model's continuous quality range (so every fractional quality is trained), Adam, and
compressai's auxiliary loss for the entropy bottleneck's quantiles on its own optimiser.
Checkpoints hold model, optimisers, scheduler, step and RNG states, and the data schedule
is a function of the step, so a resumed run continues exactly. Validation codes held-out
training images to real bitstreams. Under torchrun every process trains on its own share
of each epoch (DistributedSampler) and DistributedDataParallel averages the gradients;
rank 0 validates, logs and writes checkpoints.
"""
from __future__ import annotations

import argparse
import csv
import inspect
import json
import math
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import torch

from codec.errors import CodecError
from codec.training.loss import rd_loss
from codec.models import ARCHITECTURES
from codec.models.base import TRAINING_RATES
from codec.models.weights import build_model
from codec.training.data import list_images, refuse_evaluation_images, split_holdout
# Imported now, not at the first validation: a run outlives edits to the working tree, and
# code loaded hours later must match the model classes loaded at the start.
from codec.training.selection import code_images


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
    if config["train"].get("rate", "noise") not in TRAINING_RATES:
        raise CodecError(f"config {path}: train.rate must be " + " or ".join(f'"{r}"' for r in TRAINING_RATES)
                         + f", got {config['train']['rate']!r}")
    return config


def lr_factor(step: int, warmup: int, total: int, floor: float) -> float:
    """Linear warm-up, then cosine decay to ``floor`` (a fraction of the peak rate)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizers(model: torch.nn.Module, train: dict, schedule_start: int = 0):
    """Main Adam over network weights, aux Adam over the bottleneck quantiles, and schedule.

    The schedule (warm-up, then cosine) spans steps ``schedule_start`` to ``train["steps"]``:
    a run started from weights (``--init``) gets a fresh warm-up and cosine of its own.
    ``train["frozen"]`` names top-level modules (e.g. ``encoder``, ``decoder``, ``gains``) whose
    weights stay as they are: they get no gradient and no optimiser state. A name is one
    module, not a prefix: ``encoder`` leaves ``encoder_body`` learning. A name that is not a
    module of the model raises :class:`CodecError` (a typo would otherwise freeze nothing).
    """
    names = train.get("frozen", ())
    modules = {name for name, _ in model.named_children()}
    unknown = sorted(set(names) - modules)
    if unknown:
        raise CodecError(f"train.frozen names {', '.join(unknown)}: not a module of this model "
                         f"(its modules: {', '.join(sorted(modules))})")
    frozen = tuple(f"{name}." for name in names)
    for n, p in model.named_parameters():
        if n.startswith(frozen):
            p.requires_grad_(False)
    main_params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles") and p.requires_grad]
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]  # frozen: never stepped
    optimizer = torch.optim.Adam(main_params, lr=train["lr"])
    aux_optimizer = torch.optim.Adam(aux_params, lr=train["aux_lr"])
    floor = train.get("lr_min", train["lr"]) / train["lr"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, train.get("warmup_steps", 0), train["steps"] - schedule_start, floor))
    return optimizer, aux_optimizer, scheduler


@torch.no_grad()
def validate(model, images: list[np.ndarray], qualities: list[float], size: int = 256) -> dict:
    """Real-bitstream bpp and PSNR on centre crops of held-out images, per quality, measured
    on a copy of ``model``: building the coder's tables (``update``) resizes buffers, which
    under DistributedDataParallel must stay alike in every process (only the main one
    validates)."""
    import copy

    model = copy.deepcopy(model)
    model.eval()
    model.update(force=True)
    m = model.pad_multiple
    crops = []
    for im in images:
        h, w = min(size, im.shape[0]) // m * m, min(size, im.shape[1]) // m * m
        if h and w:
            top, left = (im.shape[0] - h) // 2, (im.shape[1] - w) // 2
            crops.append(np.ascontiguousarray(im[top:top + h, left:left + w]))
    return code_images(model, crops, qualities)


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint atomically and durably (:func:`codec.fileio.atomic_write`)."""
    from codec.fileio import atomic_write

    atomic_write(path, lambda tmp: torch.save(state, tmp))


class Distributed:
    """Process-group facts: single process by default, torchrun's environment otherwise."""

    def __init__(self, device: str) -> None:
        import torch.distributed as dist

        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device == "cuda":
            if not torch.cuda.is_available():
                raise CodecError("--device cuda was asked for, but CUDA is not available")
            torch.cuda.set_device(local_rank)
            self.device = torch.device("cuda", local_rank)
        else:
            self.device = torch.device("cpu")
        if self.world_size > 1:
            dist.init_process_group("nccl" if device == "cuda" else "gloo")
        self.is_main = self.rank == 0

    def all_reduce_mean(self, params) -> None:
        """Average gradients of parameters that DDP does not manage."""
        if self.world_size > 1:
            import torch.distributed as dist

            for p in params:
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= self.world_size

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` holds on any process (so that every process stops together)."""
        if self.world_size == 1:
            return flag
        import torch.distributed as dist

        value = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def close(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()  # every process done with its collectives (the main one saves last) before the group goes
            dist.destroy_process_group()


def seconds_from_log(log_path: Path, upto_step: int) -> float:
    """Training seconds up to a step, summed over the processes that appended to log.csv."""
    total = last = 0.0
    try:
        with open(log_path, newline="") as f:
            for row in csv.DictReader(f):
                if int(row["step"]) > upto_step:
                    break
                seconds = float(row.get("seconds") or row.get("time") or 0)
                if seconds < last:  # a new process started counting from zero
                    total += last
                last = seconds
    except (OSError, ValueError, KeyError):
        return 0.0
    return round(total + last, 1)


def describe_hardware(ctx: "Distributed") -> str:
    """A short description of what this run trains on, for the model card."""
    import platform

    if ctx.device.type == "cuda":
        what = f"{ctx.world_size} x {torch.cuda.get_device_name(ctx.device)}"
    else:
        what = f"CPU ({platform.processor() or platform.machine()}), {ctx.world_size} process(es)"
    return f"{what}, {torch.get_num_threads()} thread(s) per process"


#: What every checkpoint of ``codec train`` holds (``last.pt`` and the snapshots).
CHECKPOINT_KEYS = ("architecture", "model_config", "step", "model")


def read_checkpoint(path: str | os.PathLike) -> dict:
    """A training checkpoint (``last.pt`` or a snapshot); CodecError when unreadable or not
    one of ``codec train``'s (a bare ``state_dict``, say)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is a user error here
        reason = "not a training checkpoint" if isinstance(err, pickle.UnpicklingError) else (str(err).splitlines() or ["?"])[0]
        raise CodecError(f"cannot read checkpoint {path}: {reason}") from None
    missing = [key for key in CHECKPOINT_KEYS if key not in state] if isinstance(state, dict) else list(CHECKPOINT_KEYS)
    if missing or not isinstance(state["model"], dict):
        raise CodecError(f"cannot read checkpoint {path}: not a checkpoint of codec train "
                         f"(it has no {', '.join(missing) or 'model weights'})")
    return state


def load_checkpoint(path: Path, config: dict) -> dict:
    """Read a checkpoint and check it belongs to this architecture and model config."""
    state = read_checkpoint(path)
    if state.get("architecture") != config["architecture"] or state.get("model_config") != config["model"]:
        raise CodecError(f"checkpoint {path} is of another model or config "
                         f"({state.get('architecture')}: {state.get('model_config')}); use a new --out")
    return state


def read_init_weights(path: str, config: dict) -> tuple[dict, int, list[dict]]:
    """Weights to start a run from: (state dict, step reached, training history so far).

    The history comes from the ``history`` metadata that ``export`` writes; for older files
    it is one segment rebuilt from the ``step`` metadata and the model card beside them.
    """
    import re

    from safetensors.torch import load_file

    from codec.zoo import describe

    entry = describe(path)
    try:
        state = load_file(path)
    except Exception as err:  # noqa: BLE001 - any unreadable file is a user error here
        raise CodecError(f"cannot read weights {path}: {err}") from None
    # The wavelet boundary may change (fine-tuning periodic weights for symmetric borders), a
    # model may gain reconstruction offsets (their table starts at zero: the same decoder) or
    # an encoder body (its output starts at zero: the same encoder), and
    # an architecture that extends another starts from its weights (its own keys added).
    extended = getattr(ARCHITECTURES.get(config["architecture"]), "extends", None) == entry.architecture
    own = set(inspect.signature(ARCHITECTURES[config["architecture"]].__init__).parameters) - \
        set(inspect.signature(ARCHITECTURES[entry.architecture].__init__).parameters) if extended else set()
    free = {"boundary", "reconstruction_offsets"}
    # Weights without an encoder body may gain one (its output starts at zero: the same encoder),
    # and likewise a prior correction (codec/latent_codecs/prior_correction.py).
    free |= {"encoder_channels", "encoder_blocks"} if not entry.config.get("encoder_channels") else set()
    free |= {"prior_correction"} if not entry.config.get("prior_correction") else set()
    same = {k: v for k, v in entry.config.items() if k not in free} == \
        {k: v for k, v in config["model"].items() if k not in free and k not in own}
    if (entry.architecture != config["architecture"] and not extended) or not same:
        raise CodecError(f"weights {path} are of another model or config ({entry.architecture}: {entry.config})")
    metadata = entry.metadata
    step = int(metadata.get("step", 0))
    if "history" in metadata:
        return state, step, json.loads(metadata["history"])
    card = Path(path).with_suffix(".md")
    found = re.search(r"training time ([0-9.]+) min", card.read_text()) if card.exists() else None
    seconds = float(found.group(1)) * 60 if found else 0.0
    return state, step, [{"start_step": 0, "end_step": step, "seconds": seconds, "hardware": "see the model card",
                          "command": f"(trained before --init; history from {card.name})"}]


def train(args: argparse.Namespace) -> int:
    """Train (or resume) as the ``codec train`` arguments say; returns an exit status."""
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from codec.training.data import BatchSchedule, CropDataset, load_images

    config = load_config(args.config)
    t = config["train"]
    if args.steps:
        t["steps"] = args.steps
    out = Path(args.out)
    ckpt_path = out / "last.pt"
    # Every check of the inputs comes before any training starts.
    if out.exists() and not out.is_dir():
        raise CodecError(f"--out {out}: is a file, not a run folder")
    if ckpt_path.exists() and not args.resume:  # a second run would overwrite it and mix its log with this one's
        raise CodecError(f"--out {out} already holds a run (last.pt): --resume goes on from it, "
                         "or choose another --out")
    files = list_images(args.data)
    refuse_evaluation_images(files)
    train_files, holdout_files = split_holdout(files, t.get("holdout", 8))
    state = load_checkpoint(ckpt_path, config) if args.resume and ckpt_path.exists() else None
    if args.resume and state is None:
        print(f"no checkpoint at {ckpt_path}: starting from {args.init or 'scratch'}")
    init = read_init_weights(args.init, config) if args.init and state is None else None
    schedule_start = state.get("schedule_start", 0) if state is not None else (init[1] if init else 0)
    if t["steps"] <= schedule_start:
        raise CodecError(f"--steps {t['steps']} is not beyond the starting step {schedule_start}")

    ctx = Distributed(args.device)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    model = build_model(config["architecture"], config["model"]).to(ctx.device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer, aux_optimizer, scheduler = make_optimizers(model, t, schedule_start)
    step = 0
    history = list(state.get("history", [])) if state is not None else (init[2] if init else [])
    if state is not None and not history:  # checkpoint written before histories were kept
        history = [{"start_step": 0, "end_step": state["step"], "seconds": seconds_from_log(out / "log.csv", state["step"]),
                    "hardware": "CPU (earlier segments)", "command": "(reconstructed from log.csv)"}]
    segment = {"start_step": step, "end_step": step, "seconds": 0.0, "hardware": describe_hardware(ctx),
               "command": " ".join(["codec", *sys.argv[1:]])}
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        aux_optimizer.load_state_dict(state["aux_optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if ctx.device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], ctx.device)
        step = state["step"]
        segment["start_step"] = segment["end_step"] = step
        if ctx.is_main:
            print(f"resumed from {ckpt_path} at step {step}")
    elif init is not None:
        missing, unexpected = model.load_state_dict(init[0], strict=False)
        foreign = [k for k in missing if k.split(".")[0] in {n.split(".")[0] for n in init[0]}]
        if unexpected or foreign:
            raise CodecError(f"weights {args.init} do not fit {config['architecture']}: "
                             f"{', '.join([*unexpected, *foreign][:4])}")
        if missing and ctx.is_main:
            print(f"new in {config['architecture']}, left at their initial values: "
                  f"{', '.join(sorted({k.split('.')[0] for k in missing}))}")
        step = init[1]
        segment["start_step"] = segment["end_step"] = step
        if ctx.is_main:
            print(f"started from the weights {args.init} at step {step} (fresh optimiser and warm-up)")
    net = model
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles") and p.requires_grad]
    if ctx.world_size > 1:
        # The bottleneck quantiles only see the auxiliary loss: DDP skips them, we average them.
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
            model, [n for n, _ in model.named_parameters() if n.endswith(".quantiles")])
        net = DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)

    bars = ctx.is_main and getattr(args, "progress", False)  # bars on a terminal; a log gets a line per checkpoint
    images, skipped = load_images(train_files, t["crop"], progress=bars)
    if skipped and ctx.is_main:
        print(f"skipped {len(skipped)} unreadable or small images: {', '.join(skipped[:5])}")
    holdout, _ = load_images(holdout_files, 64, progress=False) if ctx.is_main else ([], [])
    schedule = BatchSchedule(len(images), t["batch_size"], start_step=step, total_steps=t["steps"],
                             rank=ctx.rank, world_size=ctx.world_size, seed=args.seed)
    if state is None and init is None and hasattr(model, "init_from_data"):
        # Data-dependent initialisation (same on every rank: fixed sample of crops).
        init_keys = [(i % len(images), 10**9) for i in range(min(256, 4 * len(images)))]
        dataset = CropDataset(images, t["crop"], seed=args.seed)
        model.init_from_data(torch.stack([dataset[k] for k in init_keys]).to(ctx.device))
    loader = DataLoader(CropDataset(images, t["crop"], seed=args.seed), batch_sampler=schedule,
                        num_workers=args.workers, pin_memory=ctx.device.type == "cuda",
                        persistent_workers=args.workers > 0,
                        generator=torch.Generator().manual_seed(args.seed))  # leaves the global RNG alone
    qmin, qmax = model.quality_range
    use_amp = args.amp and ctx.device.type == "cuda"

    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "log.csv"
    log_file = open(log_path, "a", newline="") if ctx.is_main else None
    log = csv.writer(log_file) if log_file else None
    if log and log_path.stat().st_size == 0:
        log.writerow(["step", "seconds", "loss", "bpp", "mse", "aux", "lr", "validation"])
    bar = tqdm(total=t["steps"], initial=step, desc=f"train {config['architecture']}", unit="step", disable=not bars)
    start, first_step = time.time(), step
    for x in loader:
        x = x.to(ctx.device, non_blocking=True)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        quality_rng = np.random.default_rng([args.seed, ctx.rank, step])  # a function of the step: exact resume
        quality = torch.from_numpy(quality_rng.uniform(qmin, qmax, size=x.shape[0]).astype(np.float32)).to(ctx.device)
        with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=use_amp):
            result = rd_loss(model, x, quality, net=net, rate=t.get("rate", "noise"))
        optimizer.zero_grad(set_to_none=True)
        result["loss"].backward()
        if t.get("clip_grad"):
            torch.nn.utils.clip_grad_norm_(model.parameters(), t["clip_grad"])
        optimizer.step()
        scheduler.step()
        aux = model.aux_loss()
        if aux_params:  # else the entropy bottleneck is frozen, its quantiles with it
            aux_optimizer.zero_grad(set_to_none=True)
            aux.backward()
            ctx.all_reduce_mean(aux_params)
            aux_optimizer.step()
        step += 1
        bar.update(1)
        out_of_time = ctx.any(bool(args.minutes) and time.time() - start >= args.minutes * 60)
        if not ctx.is_main:
            if out_of_time:
                break
            continue
        bar.set_postfix(loss=f"{result['loss'].item():.3f}", bpp=f"{result['bpp'].item():.3f}")
        val = ""
        if step % t["validate_every"] == 0 or step == t["steps"]:
            try:
                val = json.dumps({str(q): [round(b, 4), round(p, 3)] for q, (b, p) in
                                  validate(model, holdout, t["validate_qualities"]).items()})
            except ImportError as err:  # the compiled coder is not built
                model.train()
                val = f"skipped: {err}"
            tqdm.write(f"step {step} validation {{quality: [bpp, PSNR]}}: {val}")
        if step % 50 == 0 or val:
            log.writerow([step, round(time.time() - start, 1), result["loss"].item(), result["bpp"].item(),
                          result["mse"].item(), aux.item(), scheduler.get_last_lr()[0], val])
            log_file.flush()
        if t.get("snapshot_every") and step % t["snapshot_every"] == 0:
            # Model-only snapshots, to chart quality against training time afterwards.
            (out / "snapshots").mkdir(exist_ok=True)
            elapsed = sum(seg["seconds"] for seg in history) + time.time() - start
            save_checkpoint(out / "snapshots" / f"step{step:07d}.pt", {
                "architecture": config["architecture"], "model_config": config["model"], "step": step,
                "model": model.state_dict(), "train_seconds": round(elapsed, 1)})
        if step % t["checkpoint_every"] == 0 or step == t["steps"] or out_of_time:
            if not bars:
                rate = (step - first_step) / max(time.time() - start, 1e-9)
                left = (t["steps"] - step) / max(rate, 1e-9)
                print(f"step {step}/{t['steps']}: {rate:.2f} steps/s, loss {result['loss'].item():.3f}, "
                      f"bpp {result['bpp'].item():.3f}, about {left / 60:.0f} min left", flush=True)
            segment.update(end_step=step, seconds=round(time.time() - start, 1))
            save_checkpoint(ckpt_path, {
                "history": history + [segment], "train_config": t, "data": str(args.data),
                "schedule_start": schedule_start,
                "architecture": config["architecture"], "model_config": config["model"], "step": step,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "aux_optimizer": aux_optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                **({"cuda_rng": torch.cuda.get_rng_state(ctx.device)} if ctx.device.type == "cuda" else {}),
            })
        if out_of_time:
            tqdm.write(f"stopped after {args.minutes:g} minutes at step {step}; --resume goes on from here")
            break
    bar.close()
    if log_file:
        log_file.close()
    if ctx.is_main:
        print(f"checkpoint {ckpt_path} at step {step}; `codec export {ckpt_path} NAME.safetensors` writes its weights")
    ctx.close()
    return 0
