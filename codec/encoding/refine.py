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
untouched: a refined file decodes with any decoder of the model. A schedule's first
``cheap_steps`` steps use a cheap stand-in for the decoder, built at each check
(:func:`_linearised_at`), where the model offers one (``linearised_distortion``).

The result is deterministic for a given image, model, quality and number of steps: the
Gumbel noise comes from a generator seeded by :data:`SEED`, and the caller pins the thread
count (:func:`codec.api.reproducible_threads`).
"""
from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from codec.encoding.effort import Schedule
from codec.models.base import VariableRateModel

#: Seed of the Gumbel noise: refinement is a deterministic function of its inputs.
SEED = 20201206


def sga_round(values: torch.Tensor, tau: float,
              generator: torch.Generator | Sequence[torch.Generator] | None) -> torch.Tensor:
    """Stochastic Gumbel annealing of ``round(values)``: a differentiable random mix of floor
    and ceiling, nearer the nearer integer, and harder (closer to rounding) as ``tau`` falls.
    ``generator``: one for the whole tensor, or one per image of the batch (its first axis), so
    that an image's noise does not depend on the others in its batch."""
    if isinstance(generator, Sequence):
        noise = torch.stack([torch.rand(values.shape[1:], generator=g, dtype=values.dtype) for g in generator])
    else:
        noise = torch.rand(values.shape, generator=generator, dtype=values.dtype)
    return _SoftRound.apply(values, noise.to(values.device), tau)


class _SoftRound(torch.autograd.Function):
    """:func:`sga_round` given its uniform ``noise``, with its derivative computed in the
    forward pass (a backward of one product instead of autograd's walk through a dozen steps).

    The ceiling's weight in ``softmax((logits + gumbel) / tau)`` over (floor, ceiling), with
    ``logits = -atanh(distance) / tau`` (Yang et al.), is a sigmoid of the logits' difference
    plus the difference of two Gumbel samples, which is one logistic sample."""

    EPS = 1e-5

    @staticmethod
    def forward(ctx, values: torch.Tensor, noise: torch.Tensor, tau: float) -> torch.Tensor:
        eps = _SoftRound.EPS
        floor = values.floor()
        frac = values - floor
        to_floor, to_ceil = frac.clamp(eps, 1 - eps), (1 - frac).clamp(eps, 1 - eps)
        noise = noise.clamp(1e-7, 1 - 1e-7)
        logistic = torch.log(noise) - torch.log1p(-noise)
        ceiling_weight = torch.sigmoid(((torch.atanh(to_floor) - torch.atanh(to_ceil)) / tau + logistic) / tau)
        if ctx.needs_input_grad[0]:
            # The sigmoid's slope times d/dfrac of its argument: atanh' = 1 / (1 - d^2), zero
            # where a distance is clamped (frac within eps of an integer).
            inside = (frac >= eps) & (frac <= 1 - eps)
            slope = inside * (1 / (1 - to_floor.square()) + 1 / (1 - to_ceil.square())) / tau**2
            ctx.save_for_backward(ceiling_weight * (1 - ceiling_weight) * slope)
        return floor + ceiling_weight

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (derivative,) = ctx.saved_tensors
        return grad * derivative, None, None


Distortion = Callable[[torch.Tensor], torch.Tensor]


def _rd_cost(model: VariableRateModel, error: torch.Tensor, bits: torch.Tensor, quality: float,
             pixels: int) -> torch.Tensor:
    """Per-image RD cost of a per-image MSE ``error`` and ``bits`` for ``pixels`` pixels."""
    lmbda = model.lmbda(torch.tensor([quality], device=error.device))
    return lmbda * 255**2 * error + bits / pixels


def _pixel_error(x_hat: torch.Tensor, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Per-image MSE over the image's own ``height`` x ``width`` pixels (the decoder crops the
    padding)."""
    return (x_hat[..., :height, :width] - x[..., :height, :width]).pow(2).flatten(1).mean(1)


def _quantised_cost(model: VariableRateModel, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, quality: float,
                    height: int, width: int, round_fn: Callable[[torch.Tensor], torch.Tensor]
                    ) -> tuple[torch.Tensor, dict]:
    """Per-image RD cost of the latents quantised by ``round_fn``, centred as the coder centres
    (the model's latent codec, :meth:`relaxed`, whose output comes second)."""
    out = model.build_latent_codec(integer=False).relaxed(y, z, round_fn)
    x_hat = model.g_s(out["y_hat"] * model.gains.inverse_gain(quality))
    return _rd_cost(model, _pixel_error(x_hat, x, height, width), out["bits"], quality, height * width), out


def _linearised_at(model: VariableRateModel, x: torch.Tensor, y_hat: torch.Tensor, height: int,
                   width: int) -> tuple[torch.Tensor, Distortion]:
    """The per-image MSE of ``g_s(y_hat)`` (``y_hat``: quantised latents, gains removed) and a
    cheap stand-in for it near ``y_hat``: the model's ``linearised_distortion`` plus the linear
    term that makes its gradient at ``y_hat`` the true one (a first-order correction, paid for
    by one backward pass of the decoder here)."""
    point = y_hat.detach().requires_grad_(True)
    with torch.enable_grad():
        x_hat, cheap = model.linearised_distortion(point, x)
        error = _pixel_error(x_hat, x, height, width)
        (true_gradient,) = torch.autograd.grad(error.sum(), point)
        (cheap_gradient,) = torch.autograd.grad(cheap(point).sum(), point)
    correction = true_gradient - cheap_gradient
    point = point.detach()

    def distortion(v: torch.Tensor) -> torch.Tensor:
        return cheap(v) + (correction * (v - point)).flatten(1).sum(1)
    return error.detach(), distortion


def _linearised_cost(model: VariableRateModel, y: torch.Tensor, z: torch.Tensor, distortion: Distortion,
                     quality: float, pixels: int, round_fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """The cost of :func:`_quantised_cost` with the cheap stand-in ``distortion`` in place of
    the decoder (a cheap step): the entropy model, ``z`` and the hyper-synthesis, runs exactly."""
    out = model.build_latent_codec(integer=False).relaxed(y, z, round_fn)
    return _rd_cost(model, distortion(out["y_hat"] * model.gains.inverse_gain(quality)), out["bits"], quality, pixels)


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
        y_start = latents.relaxed(y, z, shrink, z_round_fn=lambda r: torch.round(shrink(r)))["y_quantised"]
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


class Adam:
    """``torch.optim.Adam`` (betas 0.9 and 0.999, eps 1e-8, no weight decay) as it updates CPU
    tensors: the same operations in the same order, so the same latents bit for bit
    (``tests/test_effort.py``). Written out because ``torch.optim``'s first step imports
    ``torch._dynamo``: about 1 s of every ``codec encode --effort N`` (an effort-1
    encode of a Kodak image takes 6 s; docs/effort.md)."""

    def __init__(self, params: list[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params, self.lr, (self.beta1, self.beta2), self.eps = list(params), lr, betas, eps
        self.steps = [0] * len(self.params)  # per tensor, as torch counts them (one without a gradient waits)
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for i, (p, exp_avg, exp_avg_sq) in enumerate(zip(self.params, self.exp_avg, self.exp_avg_sq)):
            if p.grad is None:
                continue
            self.steps[i] += 1
            step_size = self.lr / (1 - self.beta1 ** self.steps[i])
            bias_correction2_sqrt = (1 - self.beta2 ** self.steps[i]) ** 0.5
            exp_avg.lerp_(p.grad, 1 - self.beta1)
            exp_avg_sq.mul_(self.beta2).addcmul_(p.grad, p.grad, value=1 - self.beta2)
            p.addcdiv_(exp_avg, (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps), value=-step_size)


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
    generators = [torch.Generator().manual_seed(SEED) for _ in range(x.shape[0])]  # an image's bytes: its own
    with _frozen(model), torch.inference_mode(False), torch.enable_grad():
        x = x.clone()
        y = y.detach().clone().requires_grad_(True)
        z = z.detach().clone().requires_grad_(True)
        optimizer = Adam([y, z], lr=schedule.lr)
        best_y, best_z = y.detach().clone(), z.detach().clone()
        best_cost = torch.full((x.shape[0],), math.inf)
        linearise = schedule.cheap_steps > 0 and hasattr(model, "linearised_distortion")
        held: Distortion | None = None  # the cheap steps' stand-in, from the last check

        def check(y: torch.Tensor, z: torch.Tensor, hold: bool = True) -> None:
            """The true (rounded) cost; keeps the best latents, and with ``hold`` (for cheap
            steps) makes the stand-in distortion around these rounded latents."""
            nonlocal best_cost, held
            if linearise and hold:
                with torch.no_grad():
                    out = model.build_latent_codec(integer=False).relaxed(y, z, torch.round)
                error, held = _linearised_at(model, x, out["y_hat"] * model.gains.inverse_gain(quality),
                                             height, width)
                cost = _rd_cost(model, error, out["bits"], quality, height * width).cpu()
            else:
                with torch.no_grad():
                    cost = _quantised_cost(model, x, y, z, quality, height, width, torch.round)[0].cpu()
            better = cost < best_cost
            if better.any():
                on_device = better.to(y.device)
                best_y[on_device] = y.detach()[on_device]
                best_z[on_device] = z.detach()[on_device]
                best_cost = torch.where(better, cost, best_cost)

        check(y, z, hold=False)
        for deadzone in schedule.deadzones:
            check(*dead_zone_start(model, y.detach(), z.detach(), deadzone), hold=False)
        with torch.no_grad():
            y.copy_(best_y)
            z.copy_(best_z)
        if linearise and schedule.steps:
            check(y, z)  # what the cheap steps hold, around the start chosen
        bar = tqdm(total=schedule.steps, desc="refining latents", unit="step", file=sys.stderr,
                   disable=not progress, leave=False, delay=1.0)
        for step in range(schedule.steps):
            tau = schedule.temperature(step)
            soft = lambda v: sga_round(v, tau, generators)  # noqa: E731
            if held is not None and step < schedule.cheap_steps:
                loss = _linearised_cost(model, y, z, held, quality, height * width, soft).sum()
            else:
                loss = _quantised_cost(model, x, y, z, quality, height, width, soft)[0].sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if (step + 1) % schedule.check_every == 0 or step + 1 == schedule.steps:
                check(y, z, hold=step + 1 < schedule.cheap_steps)
            bar.update()
        bar.close()
    return best_y, best_z


#: Images of at most this many latents per channel (150 x 150: 1,200 x 1,200 pixels for
#: walloc; all of Kodak) are refined whole; larger ones in tiles (:func:`refine_in_tiles`).
WHOLE_AREA = 150 * 150
#: Latent rows (and columns) of a tile's own latents, and of the halo around it.
TILE, TILE_HALO = 96, 16


def refine_in_tiles(model: VariableRateModel, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, quality: float,
                    schedule: Schedule, height: int | None = None, width: int | None = None,
                    progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`refine_latents` of a large image in tiles of :data:`TILE` x :data:`TILE` latents,
    each refined as an image of its own with :data:`TILE_HALO` latents of context around it
    (kept only for its own latents), on the band pool's threads (:mod:`codec.band_pool`):
    the memory of two tiles instead of the whole image's, whatever its size. Each tile is
    seeded alike and computed on one thread, so the result does not depend on the threads.
    Images of at most :data:`WHOLE_AREA` latents per channel, or a model whose hyper-latents
    are not a fixed subsampling of ``y`` (``downsampling``), are refined whole."""
    from tqdm import tqdm

    from codec.band_pool import band_pool, in_order

    rows, cols = y.shape[-2:]
    d = getattr(model.build_latent_codec(integer=False), "downsampling", None)
    if rows * cols <= WHOLE_AREA or d is None or TILE % d or TILE_HALO % d or rows % d or cols % d:
        return refine_latents(model, x, y, z, quality, schedule, height, width, progress)
    f = x.shape[-2] // rows
    height = x.shape[-2] if height is None else height
    width = x.shape[-1] if width is None else width
    y, z = y.detach(), z.detach()  # every tile starts from these (never written)
    y_out, z_out = y.clone(), z.clone()

    def refine_tile(top: int, left: int) -> tuple[torch.Tensor, torch.Tensor]:
        bottom, right = min(rows, top + TILE), min(cols, left + TILE)
        r0, r1 = max(0, top - TILE_HALO), min(rows, bottom + TILE_HALO)
        c0, c1 = max(0, left - TILE_HALO), min(cols, right + TILE_HALO)
        x_tile = x[..., r0 * f:r1 * f, c0 * f:c1 * f]
        real_rows = min(max(height - r0 * f, 1), (r1 - r0) * f)  # the padding below the image stays out of the error
        real_cols = min(max(width - c0 * f, 1), (c1 - c0) * f)
        y_tile, z_tile = refine_latents(model, x_tile, y[..., r0:r1, c0:c1], z[..., r0 // d:r1 // d, c0 // d:c1 // d],
                                        quality, schedule, real_rows, real_cols)
        y_out[..., top:bottom, left:right] = y_tile[..., top - r0:bottom - r0, left - c0:right - c0]
        z_out[..., top // d:bottom // d, left // d:right // d] = \
            z_tile[..., (top - r0) // d:(bottom - r0) // d, (left - c0) // d:(right - c0) // d]

    tiles = [(top, left) for top in range(0, rows, TILE) for left in range(0, cols, TILE)]
    with _frozen(model), band_pool() as pool, tqdm(total=len(tiles), desc="refining latents (tiles)", unit="tile",
                                                   file=sys.stderr, disable=not progress, leave=False, delay=1.0) as bar:
        for _ in in_order(pool, refine_tile, tiles):
            bar.update()
    return y_out, z_out
