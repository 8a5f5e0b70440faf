"""Count the encoder and decoder FLOPs per pixel of a model (torch's FlopCounterMode).

Usage: python tools/flops.py [MODEL ...] [--size 512 768]

MODEL is a shipped model's name, a weights file, or a config (``.json``); by default the
shipped ``walloc`` and the retired ``hyperprior``. For ``walloc-cc`` the context transforms
are not counted (only the four transforms below).

Encoder = analysis transform + hyper-analysis + hyper-synthesis (the encoder runs it to get
the scales); decoder = hyper-synthesis + synthesis. Entropy coding is not counted. One
multiply-add counts as 2 FLOPs.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from codec import zoo
from codec.models.weights import build_model


def load(model: str) -> tuple[str, torch.nn.Module]:
    """(row label, model) of a config file, a weights file or a shipped model's name."""
    if model.endswith(".json"):
        config = json.loads(Path(model).read_text())
        return f"{config['architecture']} ({Path(model).name})", build_model(config["architecture"], config["model"])
    entry = zoo.entry_for(model)
    return f"{entry.name} ({entry.sha256[:8]})", zoo.load_model(entry)


def count(function, *args) -> int:
    with FlopCounterMode(display=False) as counter:
        function(*args)
    return counter.get_total_flops()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", metavar="MODEL",
                   default=["walloc", str(Path(zoo.__file__).parent / "weights" / "hyperprior@cce504fb.safetensors")])
    p.add_argument("--size", nargs=2, type=int, default=[512, 768], metavar=("H", "W"))
    args = p.parse_args()
    h, w = args.size
    print("| model | analysis g_a | hyper h_a + h_s | synthesis g_s | encoder total | decoder total | encoder share |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in args.models:
        label, model = load(name)
        model = model.eval()
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            y = model.g_a(x)
            z = model.h_a(y)
            g_a, h_a = count(model.g_a, x), count(model.h_a, y)
            h_s, g_s = count(model.h_s, torch.round(z)), count(model.g_s, y)
        encoder, decoder = (g_a + h_a + h_s) / (h * w), (h_s + g_s) / (h * w)
        per_pixel = [v / (h * w) for v in (g_a, h_a + h_s, g_s)]
        cells = " | ".join(f"{v:,.0f}" for v in (*per_pixel, encoder, decoder))
        print(f"| {label} | {cells} | {encoder / (encoder + decoder):.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
