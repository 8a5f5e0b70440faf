"""Encoder effort levels: what each level of ``--effort`` runs (torch-free, for the CLI).

Level 0 codes the analysis transform's latents as they are (one forward pass); each higher
level refines them for the image (:mod:`codec.encoding.refine`) for more steps. Measured
time and gain per level: ``docs/effort.md``.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

from codec.errors import InputError


@dataclass(frozen=True)
class Schedule:
    """How one refinement runs. First each dead zone ``d`` of ``deadzones`` is tried: every
    latent moved ``d`` towards the centre its coder rounds it about (the predicted mean, the
    bottleneck's median), which rounds values within ``0.5 + d`` of it to it; the best of these
    starts (the unmoved latents included) by the rounded objective is kept. Then ``steps`` Adam
    steps at learning rate ``lr`` from it; the SGA temperature holds at ``tau_start`` for the
    first ``hold`` fraction of the steps, then decays exponentially to ``tau_end``; the rounded
    objective is measured every ``check_every`` steps and at the end. The first ``cheap_steps``
    of the steps are cheap ones where the model offers a cheap stand-in for its distortion
    (``linearised_distortion``: walloc's decoder with its residual body held at its output at
    the last check, the error measured on wavelet coefficients); the entropy model (``z`` and
    the hyper-synthesis) runs exactly in them. The others are full steps."""

    steps: int
    lr: float = 5e-3
    tau_start: float = 0.5
    tau_end: float = 0.05
    hold: float = 0.3
    check_every: int = 10
    deadzones: tuple[float, ...] = ()
    cheap_steps: int = 0

    def temperature(self, step: int) -> float:
        start = self.hold * self.steps
        if step <= start:
            return self.tau_start
        progress = (step - start) / max(self.steps - start, 1)
        return self.tau_start * (self.tau_end / self.tau_start) ** progress


#: Dead zones tried before the Adam steps of efforts 1 to 4 (they start from the best of them).
DEAD_ZONES = (0.03, 0.05, 0.07, 0.09)

#: The refinement each effort level above 0 runs.
EFFORTS: dict[int, Schedule] = {
    1: Schedule(steps=100, lr=1e-2, tau_end=0.2, check_every=25, deadzones=DEAD_ZONES, cheap_steps=100),
    2: Schedule(steps=200, lr=1e-2, tau_end=0.2, check_every=25, deadzones=DEAD_ZONES, cheap_steps=200),
    3: Schedule(steps=1000, lr=5e-3, tau_end=0.2, check_every=25, deadzones=DEAD_ZONES, cheap_steps=1000),
    4: Schedule(steps=1200, lr=5e-3, tau_end=0.2, check_every=25, deadzones=DEAD_ZONES, cheap_steps=1000),
}
MAX_EFFORT = max(EFFORTS)


def schedule_for(effort: int) -> Schedule | None:
    """The schedule of an effort level (None for 0); InputError for anything but 0..MAX_EFFORT."""
    if isinstance(effort, bool) or not isinstance(effort, numbers.Integral) or not 0 <= effort <= MAX_EFFORT:
        raise InputError(f"effort must be an integer from 0 to {MAX_EFFORT}, got {effort!r}")
    return EFFORTS.get(int(effort))


