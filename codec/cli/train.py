"""`codec train` and `codec export`: train a model (CPU, GPU, torchrun) and ship its weights."""
from __future__ import annotations

import argparse
import os

from codec.cli._common import count_of, non_negative


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train or resume a model (see docs/training.md)",
                              description="Train a variable-rate model from a JSON config; resumable, "
                                          "CPU, one GPU or torchrun. See docs/training.md.")
    p.add_argument("--config", required=True, help="JSON config: architecture, model, train settings")
    p.add_argument("--data", default="../shared/data/train",
                   help="folder of training photographs (default: ../shared/data/train, from the current folder)")
    p.add_argument("--out", required=True, help="run folder: last.pt checkpoint, log.csv, snapshots/ "
                                                 "(a folder that holds a run is refused without --resume)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if it exists")
    p.add_argument("--init", default="", help="start from these weights (safetensors): fresh optimiser, warm-up "
                   "and cosine from their step to --steps; their training history carries over")
    p.add_argument("--steps", type=non_negative("--steps"), default=0, help="override the config's total steps")
    p.add_argument("--minutes", type=non_negative("--minutes", float), default=0,
                   help="stop cleanly (checkpoint written) after this many minutes of training; 0: no limit")
    p.add_argument("--seed", type=int, default=0, help="seed of the crops, qualities and initialisation (default 0)")
    p.add_argument("--threads", type=count_of("threads", "--threads"), default=max(1, os.cpu_count() or 1),
                   help="CPU threads per process (default: the cores)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to train (default cpu)")
    p.add_argument("--workers", type=non_negative("--workers"), default=0, help="data loader worker processes")
    p.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA (entropy models stay float32)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format (helps on GPU)")
    p.set_defaults(func=run_train)

    p = subparsers.add_parser("export", help="write shipped weights and a model card from a checkpoint",
                              description="Write safetensors weights and a model card from a training "
                                          "checkpoint. --if-better writes only when the checkpoint beats the "
                                          "weights already there on the run's held-out training images.")
    p.add_argument("checkpoint", help="last.pt or a snapshot")
    p.add_argument("weights", help="weights file to write, e.g. codec/zoo/weights/walloc.safetensors")
    p.add_argument("--if-better", action="store_true",
                   help="compare with the existing WEIGHTS on held-out images (BD-rate) and keep the better; "
                        "replaced weights stay beside as NAME@HASH.safetensors")
    p.add_argument("--against", default=None, metavar="WEIGHTS",
                   help="with --if-better, compare with these weights instead (e.g. a new family against the "
                        "model it extends); written only if the checkpoint beats them")
    p.add_argument("--data", default=None, help="training data folder (default: the one the checkpoint names)")
    p.add_argument("--float32", action="store_true",
                   help="store the parameters in float32 (default: rounded to float16, half the file; the "
                        "held-out comparison is of the rounded ones)")
    p.set_defaults(func=run_export)


def run_train(args: argparse.Namespace) -> int:
    from codec.cli._common import progress_wanted
    from codec.training.trainer import train

    args.progress = progress_wanted()
    return train(args)


def run_export(args: argparse.Namespace) -> int:
    from codec.errors import InputError
    from codec.training.export import export

    from pathlib import Path

    from codec.cli._common import check_input, check_output

    if args.against and not args.if_better:
        raise InputError("--against needs --if-better")
    check_input(args.checkpoint)
    weights = Path(args.weights)
    if weights.suffix != ".safetensors":
        raise InputError(f"{weights}: weights are written as NAME.safetensors (the model card goes beside, NAME.md)")
    for output in (weights, weights.with_suffix(".md")):  # never over the checkpoint being read
        check_output(str(output), [args.checkpoint], "bitstream_any")
    written, account = export(args.checkpoint, args.weights, if_better=args.if_better, data=args.data,
                              against=args.against, half=not args.float32)
    print(account)
    return 0 if written or args.if_better else 1
