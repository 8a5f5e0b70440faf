"""The training commands of docs/training.md's procedure (above "## Measured") load the weights they
name: a config and ``--init`` on one line must build the model those weights are of, and a
``--steps`` must go beyond their step (the twenty-second session found four that no longer did)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROCEDURE = (ROOT / "docs" / "training.md").read_text().split("\n## Measured")[0]
PAIRS = [(m.group(1), m.group(2), re.search(r"--steps (\d+)", line))
         for line in PROCEDURE.splitlines()
         for m in [re.search(r"(configs/[\w.-]+\.json).*--init (codec/zoo/weights/[\w@.-]+\.safetensors)", line)] if m]


def test_the_procedure_has_commands_to_check():
    assert len(PAIRS) >= 3


@pytest.mark.parametrize("config, weights, steps", PAIRS, ids=[f"{c}+{w}" for c, w, _ in PAIRS])
def test_a_documented_config_takes_the_weights_it_is_given(config, weights, steps):
    from codec.training.trainer import load_config, read_init_weights

    _, step, _ = read_init_weights(str(ROOT / weights), load_config(str(ROOT / config)))
    if steps is not None:
        assert int(steps.group(1)) > step, f"--steps {steps.group(1)} is not beyond the weights' step {step}"
