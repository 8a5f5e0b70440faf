"""The trainer: a tiny run, exact resume, bad-input errors before training, export."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
TINY_MODEL = {"latent_channels": 4, "levels": 2, "decoder_channels": 8, "decoder_blocks": 1,
              "hyper_channels": 8, "z_channels": 4}


def _train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "ignore", "-m", "codec", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    data = root / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(14):
        Image.fromarray(rng.integers(0, 255, (72, 80, 3), dtype=np.uint8)).save(data / f"im{i}.jpg")
    config = {"architecture": "walloc", "model": TINY_MODEL,
              "train": {"batch_size": 2, "crop": 64, "steps": 6, "lr": 1e-3, "aux_lr": 1e-3, "holdout": 2,
                        "checkpoint_every": 3, "validate_every": 100, "validate_qualities": [1]}}
    config_path = root / "tiny.json"
    config_path.write_text(json.dumps(config))
    return root, data, config_path


@pytest.fixture(scope="module")
def trained(setup):
    """The setup, with run ``a`` trained for the config's 6 steps (once per module)."""
    root, data, config = setup
    if not (root / "a" / "last.pt").exists():
        result = _train("train", "--config", str(config), "--data", str(data), "--threads", "1", "--out", str(root / "a"))
        assert result.returncode == 0, result.stderr
    return setup


def _state(run: Path) -> dict:
    return torch.load(run / "last.pt", map_location="cpu", weights_only=True)


def test_resume_is_exact(setup):
    root, data, config = setup
    common = ["--config", str(config), "--data", str(data), "--threads", "1"]
    straight = _train("train", *common, "--out", str(root / "a"))
    assert straight.returncode == 0, straight.stderr
    assert _train("train", *common, "--out", str(root / "b"), "--steps", "3").returncode == 0
    resumed = _train("train", *common, "--out", str(root / "b"), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout
    a, b = _state(root / "a"), _state(root / "b")
    assert a["step"] == b["step"] == 6
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    log = (root / "a" / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,") and log[-1].startswith("6,")


def test_export_writes_loadable_weights(trained):
    root, _, _ = trained
    weights = root / "tiny.safetensors"
    result = _train("export", str(root / "a" / "last.pt"), str(weights))
    assert result.returncode == 0, result.stderr
    from codec.models.weights import load_weights
    from codec.zoo import read_metadata

    assert read_metadata(weights)["architecture"] == "walloc"
    model = load_weights(weights)
    assert model.quality_range == (1.0, 6.0)
    assert model.entropy_bottleneck._quantized_cdf.numel() > 0  # tables shipped with the weights


@pytest.mark.parametrize("case", ["missing", "empty", "unreadable", "other_config", "bad_rate", "bad_frozen"])
def test_bad_input_fails_before_training(trained, tmp_path, case):
    root, data, config = trained  # other_config resumes run a
    out = tmp_path / "run"
    if case == "missing":
        args = ["--data", str(tmp_path / "nope"), "--config", str(config)]
        expected = "not found"
    elif case == "empty":
        (tmp_path / "empty").mkdir()
        args = ["--data", str(tmp_path / "empty"), "--config", str(config)]
        expected = "no images"
    elif case == "unreadable":
        bad = tmp_path / "bad"
        bad.mkdir()
        for i in range(4):
            (bad / f"x{i}.jpg").write_bytes(b"not an image")
        args = ["--data", str(bad), "--config", str(config)]
        expected = "readable"
    elif case == "bad_rate":
        bad_rate = json.loads(config.read_text())
        bad_rate["train"]["rate"] = "hard"
        bad_path = tmp_path / "bad_rate.json"
        bad_path.write_text(json.dumps(bad_rate))
        args = ["--data", str(data), "--config", str(bad_path)]
        expected = 'train.rate must be "noise" or "rounded"'
    elif case == "bad_frozen":
        bad_frozen = json.loads(config.read_text())
        bad_frozen["train"]["frozen"] = ["encoder", "decodr"]
        bad_path = tmp_path / "bad_frozen.json"
        bad_path.write_text(json.dumps(bad_frozen))
        args = ["--data", str(data), "--config", str(bad_path)]
        expected = "train.frozen names decodr: not a module of this model"
    else:
        other = json.loads(config.read_text())
        other["model"] = dict(TINY_MODEL, latent_channels=6)
        other_path = tmp_path / "other.json"
        other_path.write_text(json.dumps(other))
        out = root / "a"  # a checkpoint of the original config lives here
        args = ["--data", str(data), "--config", str(other_path), "--resume"]
        expected = "another model or config"
    result = _train("train", *args, "--out", str(out), "--threads", "1")
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    if case != "other_config":
        assert not (out / "last.pt").exists()


@pytest.mark.parametrize("path", sorted((Path(__file__).parent.parent / "configs").glob("*.json")), ids=lambda p: p.name)
def test_committed_configs_freeze_modules_that_exist(path):
    """Each name in a committed config's ``train.frozen`` is a module of the model it builds."""
    from codec.models.weights import build_model
    from codec.training.trainer import load_config, make_optimizers

    config = load_config(str(path))
    model = build_model(config["architecture"], config["model"])
    make_optimizers(model, config["train"])  # raises on a name that is not a module
    learning = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert not learning & set(config["train"].get("frozen", ()))


def test_lr_schedule_warms_up_and_decays():
    from codec.training.trainer import lr_factor

    assert lr_factor(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_factor(100, 10, 100, 0.1) == pytest.approx(0.1)
    values = [lr_factor(s, 10, 100, 0.1) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_init_from_weights_continues_the_step_and_the_history(trained):
    """A run started from exported weights goes on from their step, with their history."""
    root, data, config = trained
    weights = root / "init.safetensors"
    assert _train("export", str(root / "a" / "last.pt"), str(weights)).returncode == 0
    result = _train("train", "--config", str(config), "--data", str(data), "--threads", "1",
                    "--out", str(root / "c"), "--init", str(weights), "--steps", "9")
    assert result.returncode == 0, result.stderr
    assert "started from the weights" in result.stdout
    state = _state(root / "c")
    assert state["step"] == 9 and state["schedule_start"] == 6
    assert [(seg["start_step"], seg["end_step"]) for seg in state["history"]] == [(0, 6), (6, 9)]
    too_few = _train("train", "--config", str(config), "--data", str(data), "--threads", "1",
                     "--out", str(root / "d"), "--init", str(weights), "--steps", "6")
    assert too_few.returncode == 1 and "not beyond" in too_few.stderr


def test_export_if_better_keeps_the_better_weights(trained, tmp_path, monkeypatch):
    from codec.training import export as export_module
    from codec.training import selection

    root, data, _ = trained
    weights = tmp_path / "tiny.safetensors"
    written, _ = export_module.export(str(root / "a" / "last.pt"), str(weights))
    assert written
    before = weights.read_bytes()
    # The same weights again: BD-rate 0 on the held-out images (real files), so nothing is written.
    written, account = export_module.export(str(root / "a" / "last.pt"), str(weights), if_better=True, data=str(data))
    assert not written and "+0.00 %" in account and weights.read_bytes() == before
    # A candidate that needs 10 % fewer bits at every quality replaces them; the old ones stay by hash.
    real = selection.code_images
    calls = []

    def fewer_bits_for_the_candidate(model, images, qualities):
        curve = real(model, images, qualities)
        calls.append(curve)
        return curve if len(calls) == 1 else {q: (r * 0.9, d) for q, (r, d) in curve.items()}

    monkeypatch.setattr(selection, "code_images", fewer_bits_for_the_candidate)
    written, account = export_module.export(str(root / "a" / "last.pt"), str(weights), if_better=True, data=str(data))
    assert written and "-10.00 %" in account
    kept = list(tmp_path.glob("tiny@*.safetensors"))
    assert len(kept) == 1 and kept[0].read_bytes() == before


def test_export_against_other_weights(trained, tmp_path):
    """--against compares with other weights (a new family against the model it extends): the
    same weights are no gain, so the new file is not written; missing weights are an error."""
    from codec.errors import InputError
    from codec.training import export as export_module

    root, data, _ = trained
    reference = tmp_path / "reference.safetensors"
    assert export_module.export(str(root / "a" / "last.pt"), str(reference))[0]
    target = tmp_path / "new-family.safetensors"
    written, account = export_module.export(str(root / "a" / "last.pt"), str(target), if_better=True,
                                            data=str(data), against=str(reference))
    assert not written and "+0.00 % against reference.safetensors" in account and not target.exists()
    with pytest.raises(InputError, match="no weights"):
        export_module.export(str(root / "a" / "last.pt"), str(target), if_better=True, against=str(tmp_path / "none"))


def test_training_refuses_kodak(setup, tmp_path):
    """Kodak is for reported figures only: a data folder holding a Kodak image is refused."""
    root, data, config = setup
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for f in data.iterdir():
        (mixed / f.name).write_bytes(f.read_bytes())
    (mixed / "kodim07.png").write_bytes((data / "im0.jpg").read_bytes())
    result = _train("train", "--config", str(config), "--data", str(mixed), "--out", str(tmp_path / "run"))
    assert result.returncode == 1 and "Kodak" in result.stderr and "Traceback" not in result.stderr


def test_gpu_window_recipe_runs_on_the_cpu(setup, tmp_path):
    """tools/gpu_train.sh, the one-command GPU window, as a dry run on the CPU: it trains with
    --resume until the time budget, then hands last.pt, log.csv and a snapshot to $OUT."""
    import os
    import shutil

    root, data, config = setup
    carry = tmp_path / "carry"
    shutil.copytree(data, carry / "train")
    out = tmp_path / "out"
    env = dict(os.environ, CARRY=str(carry), DEVICE="cpu", OUT=str(out))
    result = subprocess.run(["bash", str(ROOT / "tools" / "gpu_train.sh"), str(config), str(tmp_path / "run"), "0.02",
                             "--threads", "1", "--steps", "100000"], capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stopped after 0.02 minutes" in result.stdout + result.stderr
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert 1 <= state["step"] < 100000 and (out / "log.csv").exists()


def test_torchrun_ddp_with_gloo(trained, tmp_path):
    """Two CPU processes under torchrun (gloo): DistributedDataParallel trains, rank 0 writes
    the checkpoint, and --minutes stops both ranks together."""
    import shutil

    root, data, config = trained
    if shutil.which("torchrun") is None:
        pytest.skip("torchrun is not on PATH")
    for attempt in range(2):
        out = tmp_path / f"ddp{attempt}"
        result = subprocess.run(["torchrun", "--nproc_per_node=2", "--master_port=29533", "-m", "codec", "train",
                                 "--config", str(config), "--data", str(data), "--out", str(out),
                                 "--threads", "1", "--steps", "100000", "--minutes", "0.03"],
                                capture_output=True, text=True, timeout=300)
        # On a loaded CPU, gloo has aborted a rank in its own teardown once (after the
        # checkpoint and the process group's barrier; torch's message below): one retry.
        if result.returncode == 0 or "terminate called without an active exception" not in result.stderr:
            break
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    state = _state(out)
    assert state["step"] >= 1 and "2 process(es)" in state["history"][-1]["hardware"]


def test_init_may_change_only_the_wavelet_boundary(tiny_weights):
    """Periodic weights start a symmetric-boundary run (the borders are fine-tuned); any other
    change of the network's config is refused."""
    from conftest import TINY_WALLOC

    from codec.errors import CodecError
    from codec.models.weights import build_model
    from codec.training.trainer import read_init_weights

    config = {"architecture": "walloc", "model": dict(TINY_WALLOC, boundary="symmetric")}
    state, step, _ = read_init_weights(str(tiny_weights), config)
    model = build_model("walloc", config["model"])
    model.load_state_dict(state)
    assert model.wpt.boundary == "symmetric" and step == 0
    with pytest.raises(CodecError, match="another model or config"):
        read_init_weights(str(tiny_weights), {"architecture": "walloc", "model": dict(TINY_WALLOC, z_channels=4)})


def test_offsets_fit_changes_only_the_table(trained):
    """Weights without reconstruction offsets start a run whose config adds them; with every
    other module frozen (the entropy bottleneck too: its quantiles skip the auxiliary step),
    only the table moves, from zero."""
    from safetensors.torch import load_file

    root, data, config = trained
    weights = root / "plain.safetensors"
    assert _train("export", str(root / "a" / "last.pt"), str(weights)).returncode == 0
    fit = json.loads(config.read_text())
    fit["model"]["reconstruction_offsets"] = True
    fit["train"].update(lr=1e-2, frozen=["encoder", "decoder", "gains", "h_a", "h_s", "entropy_bottleneck"])
    fit_path = root / "offsets.json"
    fit_path.write_text(json.dumps(fit))
    result = _train("train", "--config", str(fit_path), "--data", str(data), "--threads", "1",
                    "--out", str(root / "offsets"), "--init", str(weights), "--steps", "10")
    assert result.returncode == 0, result.stderr
    assert "left at their initial values: reconstruction" in result.stdout
    before, after = load_file(weights), _state(root / "offsets")["model"]
    assert after["reconstruction.offsets"].abs().sum() > 0
    moved = [k for k in before if not k.endswith(("_cdf", "_offset", "_length")) and not torch.equal(before[k], after[k])]
    assert moved == []


def test_a_folder_that_holds_a_run_is_refused_without_resume(trained):
    root, data, config = trained
    before = (root / "a" / "last.pt").stat().st_mtime_ns
    result = _train("train", "--config", str(config), "--data", str(data), "--threads", "1", "--out", str(root / "a"))
    assert result.returncode == 1 and "already holds a run (last.pt): --resume goes on from it" in result.stderr
    assert (root / "a" / "last.pt").stat().st_mtime_ns == before


def test_a_log_gets_a_line_per_checkpoint_and_no_bar_frames(setup, tmp_path):
    _, data, config = setup
    result = _train("train", "--config", str(config), "--data", str(data), "--threads", "1",
                    "--out", str(tmp_path / "run"), "--steps", "3")
    assert result.returncode == 0, result.stderr
    assert "step 3/3: " in result.stdout and f"checkpoint {tmp_path / 'run' / 'last.pt'} at step 3" in result.stdout
    assert "step/s]" not in result.stderr and "img/s]" not in result.stderr  # tqdm frames


def test_export_stores_float16_parameters_unless_asked_for_float32(trained, tmp_path):
    from safetensors import safe_open

    from codec.models.weights import load_weights

    root, _, _ = trained
    half, full = tmp_path / "half.safetensors", tmp_path / "full.safetensors"
    assert _train("export", str(root / "a" / "last.pt"), str(half)).returncode == 0
    assert _train("export", str(root / "a" / "last.pt"), str(full), "--float32").returncode == 0
    model = load_weights(half)
    with safe_open(str(half), "pt") as f:
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
    parameters = {name for name, _ in model.named_parameters()}
    assert {dtypes[k] for k in parameters} == {"F16"} and "F32" in {dtypes[k] for k in dtypes if k not in parameters}
    reference = load_weights(full)
    for (name, a), (_, b) in zip(model.named_parameters(), reference.named_parameters()):
        assert torch.equal(a, b.half().float()), name  # the stored values are the rounded float32 ones
    saved = full.stat().st_size - half.stat().st_size  # two bytes a parameter, the tables unchanged
    assert abs(saved - 2 * sum(p.numel() for p in model.parameters())) < 1024
    assert "parameters stored as float16" in half.with_suffix(".md").read_text()
