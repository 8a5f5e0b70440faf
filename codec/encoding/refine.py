"""Per-image latent refinement: spend encoder time to make a file smaller for the same quality.

A trained analysis transform gives latents that are good on average over the training set,
not optimal for the image at hand. Starting from them, this module optimises the latents
``y`` and hyper-latents ``z`` of one image against the model's own rate-distortion objective

    lambda(q) * 255^2 * MSE(x, g_s(y_hat)) + (bits(y_hat | z_hat) + bits(z_hat)) / pixels

with Adam, replacing rounding by stochastic Gumbel annealing (SGA; Yang, Bamler & Mandt,
"Improving Inference for Neural Image Compression", NeurIPS 2020): each latent is a soft,
random mix of its floor and ceiling whose temperature falls over the iterations, so the
optimiser sees the quantisation it will meet. Every ``check_every`` steps the latents are
rounded and the true objective is measured; the best rounded latents found (the starting
point included) are what gets coded. The decoder, the entropy model and the file format are
untouched: a refined file decodes with any decoder of the model.

The result is deterministic for a given image, model, quality and number of steps: the
Gumbel noise comes from a generator seeded by :data:`SEED`, and the caller pins the thread
count (:func:`codec.api.reproducible_threads`).
"""
from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from codec.encoding.effort import Schedule
from codec.models.base import VariableRateModel

#: Seed of the Gumbel noise: refinement is a deterministic function of its inputs.
SEED = 20201206


def sga_round(values: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
    """Stochastic Gumbel annealing of ``round(values)``: a differentiable random mix of floor
    and ceiling, nearer the nearer integer, and harder (closer to rounding) as ``tau`` falls."""
    floor = values.detach().floor()
    frac = values - floor  # in [0, 1); gradient flows through it
    eps = 1e-5
    logit_floor = -torch.atanh(frac.clamp(eps, 1 - eps)) / tau
    logit_ceil = -torch.atanh((1 - frac).clamp(eps, 1 - eps)) / tau
    logits = torch.stack([logit_floor, logit_ceil], dim=-1)
    uniform = torch.rand(logits.shape, generator=generator, dtype=logits.dtype).to(logits.device)
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-10, 1.0)))
    weights = torch.softmax((logits + gumbel) / tau, dim=-1)
    return floor + weights[..., 1]


def _quantised_cost(model: VariableRateModel, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, quality: float,
                    height: int, width: int, round_fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Per-image RD cost of the latents quantised by ``round_fn``, centred as the coder centres
    (the model's latent codec, :meth:`relaxed`); the distortion counts only the image's own
    ``height`` x ``width`` pixels (the padding is cropped by the decoder)."""
    out = model.build_latent_codec(integer=False).relaxed(y, z, round_fn)
    x_hat = model.g_s(out["y_hat"] * model.gains.inverse_gain(quality))
    error = (x_hat[..., :height, :width] - x[..., :height, :width]).pow(2).flatten(1).mean(1)
    lmbda = model.lmbda(torch.tensor([quality], device=x.device))
    return lmbda * 255**2 * error + out["bits"] / (height * width)


def dead_zone_start(model: VariableRateModel, y: torch.Tensor, z: torch.Tensor,
                    deadzone: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, z)`` with every latent moved ``deadzone`` towards the centre the coder rounds it
    about (z: the bottleneck's median; y: the mean predicted from the rounded ``z``): rounded,
    values within ``0.5 + deadzone`` of the centre become the centre, the dead-zone quantiser
    of classical codecs, which trades a little distortion for fewer bits. The moved latents
    stay off the rounding edges, so refinement can start from them. (With a context model,
    the later groups' means come from the earlier groups' moved, unrounded latents: close to,
    not exactly, the coder's.)"""
    latents = model.build_latent_codec(integer=False)

    def shrink(r: torch.Tensor) -> torch.Tensor:
        return r - deadzone * torch.sign(r)

    with torch.no_grad():
        y_start = latents.relaxed(y, z, shrink, z_round_fn=lambda r: torch.round(shrink(r)))["y_hat"]
        z_start = latents.hyper.centred(z, shrink)
    return y_start, z_start


@contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """Gradients flow to the latents only, not into the weights (half the backward's work)."""
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


def refine_latents(model: VariableRateModel, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, quality: float,
                   schedule: Schedule, height: int | None = None, width: int | None = None,
                   progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents ``(y, z)`` of the batch ``x`` refined for ``schedule.steps`` steps.

    ``y`` and ``z`` are the analysis transforms' output for ``x`` (gains applied); the
    returned latents are the best rounded ones found, per image, by the true RD cost,
    never worse than the inputs. ``progress`` shows a bar on standard error.
    """
    from tqdm import tqdm

    height = x.shape[-2] if height is None else height
    width = x.shape[-1] if width is None else width
    generator = torch.Generator().manual_seed(SEED)
    with _frozen(model), torch.inference_mode(False), torch.enable_grad():
        x = x.clone()
        y = y.detach().clone().requires_grad_(True)
        z = z.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([y, z], lr=schedule.lr)
        best_y, best_z = y.detach().clone(), z.detach().clone()
        best_cost = torch.full((x.shape[0],), math.inf)

        def check(y: torch.Tensor, z: torch.Tensor) -> None:
            nonlocal best_cost
            with torch.no_grad():
                cost = _quantised_cost(model, x, y, z, quality, height, width, torch.round).cpu()
            better = cost < best_cost
            if better.any():
                on_device = better.to(y.device)
                best_y[on_device] = y.detach()[on_device]
                best_z[on_device] = z.detach()[on_device]
                best_cost = torch.where(better, cost, best_cost)

        check(y, z)
        for deadzone in schedule.deadzones:
            check(*dead_zone_start(model, y.detach(), z.detach(), deadzone))
        with torch.no_grad():
            y.copy_(best_y)
            z.copy_(best_z)
        bar = tqdm(total=schedule.steps, desc="refining latents", unit="step", file=sys.stderr,
                   disable=not progress, leave=False, delay=1.0)
        for step in range(schedule.steps):
            tau = schedule.temperature(step)
            loss = _quantised_cost(model, x, y, z, quality, height, width,
                                   lambda v: sga_round(v, tau, generator)).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if (step + 1) % schedule.check_every == 0 or step + 1 == schedule.steps:
                check(y, z)
            bar.update()
        bar.close()
    return best_y, best_z
