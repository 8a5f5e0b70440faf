"""tools/average_checkpoints.py: the weighted mean of runs' weights, exportable as a model."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from codec.training.export import export
from codec.models.weights import load_weights

TOOL = Path(__file__).resolve().parents[1] / "tools" / "average_checkpoints.py"


def _shifted(weights: Path, out: Path, shift: float) -> Path:
    """A copy of ``weights`` with every floating-point tensor moved by ``shift``."""
    with safe_open(str(weights), "pt") as f:
        metadata = f.metadata()
    tensors = {k: v + shift if v.is_floating_point() else v for k, v in load_file(str(weights)).items()}
    save_file(tensors, str(out), metadata=metadata)
    return out


def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True)


def test_the_mean_of_two_inputs_and_a_weighted_mean(tiny_weights, tmp_path):
    other = _shifted(tiny_weights, tmp_path / "other.safetensors", 1.0)
    base = load_file(str(tiny_weights))
    for options, expected_shift in (((), 0.5), (("--weights", 3, 1), 0.25)):
        out = tmp_path / "soup.pt"
        assert _run(tiny_weights, other, "--out", out, *options).returncode == 0
        model = torch.load(out, weights_only=True)["model"]
        for name, value in base.items():
            if value.is_floating_point():
                assert torch.allclose(model[name], value + expected_shift, atol=1e-6), name
            else:
                assert torch.equal(model[name], value), name  # CDF tables: the first input's


def test_the_mean_exports_as_a_model_that_codes(tiny_weights, tmp_path):
    other = _shifted(tiny_weights, tmp_path / "other.safetensors", 0.01)
    assert _run(tiny_weights, other, "--out", tmp_path / "soup.pt").returncode == 0
    written, _ = export(str(tmp_path / "soup.pt"), str(tmp_path / "soup.safetensors"))
    assert written
    model = load_weights(tmp_path / "soup.safetensors")
    with torch.no_grad():
        assert torch.isfinite(model.g_a(torch.rand(1, 3, 64, 64))).all()


def test_inputs_of_another_config_or_bad_weights_are_refused(tiny_weights, tmp_path):
    wide = tmp_path / "wide.safetensors"
    widen = Path(__file__).resolve().parents[1] / "tools" / "widen_walloc.py"
    subprocess.run([sys.executable, str(widen), str(tiny_weights), str(wide), "--decoder-channels", "24"], check=True)
    for args in ((tiny_weights, wide), (tiny_weights, tiny_weights, "--weights", 1), (tiny_weights, "--weights", -1)):
        done = _run(*args, "--out", tmp_path / "bad.pt")
        assert done.returncode == 2 and done.stderr.startswith("error:") and "Traceback" not in done.stderr
        assert not (tmp_path / "bad.pt").exists()


def test_an_output_that_is_not_a_checkpoint_name_is_refused(tiny_weights, tmp_path):
    """The soup is a training checkpoint: a ``.safetensors`` name would hold a torch pickle
    that ``codec export`` and the weights loader cannot read."""
    done = _run(tiny_weights, tiny_weights, "--out", tmp_path / "soup.safetensors")
    assert done.returncode == 2 and "must end in .pt" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "soup.safetensors").exists()
