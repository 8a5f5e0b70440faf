"""Tests of `codec eval` (codec.evaluation): metrics, BD-rate, end-to-end runs, resume, cache location,
missing plugins, the ETA, bad input, downloads."""
from __future__ import annotations

import csv
import hashlib
import http.server
import io
import importlib.metadata
import json
import math
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codec.cli import main
from codec.errors import InputError
from codec.evaluation import bd, datasets, learned, metrics, runner
from codec.evaluation.store import ResultStore


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in its own folder: the default cache (.cache/eval/...) is relative to it."""
    monkeypatch.chdir(tmp_path)


def _image(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = np.stack([(x * 1.3) % 256, (y * 0.9 + x * 0.4) % 256, 128 + 60 * np.sin(x / 9.0)], axis=2)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "images"
    d.mkdir()
    for i in range(2):
        Image.fromarray(_image(192, i)).save(d / f"img{i}.png")
    return d


# --- metrics -------------------------------------------------------------------------------------

def test_psnr_and_bpp_hand_computed() -> None:
    a = np.full((10, 20, 3), 100, np.uint8)
    b = a + 5  # constant error 5 -> MSE 25
    assert metrics.mse(a, b) == 25.0
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 25))
    assert metrics.psnr(a, a) == math.inf
    assert metrics.bpp(1000, 100, 80) == pytest.approx(1.0)
    assert metrics.bpp(3, 2, 2) == pytest.approx(6.0)


def test_ms_ssim_identical_is_one_and_small_is_nan() -> None:
    img = _image(192, 0)
    assert metrics.ms_ssim(img, img) == pytest.approx(1.0, abs=1e-6)
    assert metrics.ms_ssim(img, np.clip(img.astype(int) + 20, 0, 255).astype(np.uint8)) < 1.0
    assert math.isnan(metrics.ms_ssim(img[:100], img[:100]))


# --- BD-rate -------------------------------------------------------------------------------------

RATES = [0.15, 0.3, 0.55, 0.8, 1.2, 1.9]
PSNRS = [25.0, 28.0, 30.5, 32.0, 34.0, 36.5]


def test_bd_rate_self_and_scaled() -> None:
    value, _ = bd.bd_rate(RATES, PSNRS, RATES, PSNRS)
    assert value == pytest.approx(0.0, abs=1e-9)
    value, _ = bd.bd_rate(RATES, PSNRS, [r * 0.9 for r in RATES], PSNRS)
    assert value == pytest.approx(-10.0, abs=0.1)


def test_bd_rate_no_overlap_gives_reason() -> None:
    value, reason = bd.bd_rate(RATES, PSNRS, RATES, [p + 20 for p in PSNRS])
    assert value is None and "overlap" in reason


# --- end to end with a fake learned model ----------------------------------------------------------

class FakeModel:
    """Stands in for codec.api: quantises the image (step shrinking with quality) and stores it as PNG."""

    def __init__(self) -> None:
        self.encodes = 0

    def encode(self, image, model, quality, device="cpu", effort=0) -> bytes:
        rgb = np.asarray(image)
        if min(rgb.shape[:2]) < 100:
            raise InputError("image too small for this model (needs 100 px)")
        self.encodes += 1
        step = int(64 / 2 ** (quality - 1)) or 1
        buffer = io.BytesIO()
        Image.fromarray((rgb // step * step + step // 2).clip(0, 255).astype(np.uint8)).save(buffer, "PNG")
        return buffer.getvalue()

    def decode(self, data: bytes, device="cpu", model=None) -> Image.Image:
        return Image.open(io.BytesIO(data)).convert("RGB")


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[FakeModel, Path]:
    from codec import api

    fake = FakeModel()
    monkeypatch.setattr(learned, "require_coder", lambda: None)
    monkeypatch.setattr(api, "resolve_model", lambda ref, device="cpu": types.SimpleNamespace(quality_range=(1.0, 6.0)))
    monkeypatch.setattr(api, "encode", fake.encode)
    monkeypatch.setattr(api, "decode", fake.decode)
    # A weights file the model catalogue can describe (header only; the fake API never loads it).
    from safetensors.numpy import save_file

    weights = tmp_path / "fake.safetensors"
    config = {"lambdas": [0.001 * 2**k for k in range(6)]}  # 6 trained levels: qualities 1..6
    save_file({"x": np.zeros(1, np.float32)}, str(weights),
              metadata={"architecture": "walloc", "config": json.dumps(config)})
    return fake, weights


def _count_baseline_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    original = runner.code_baseline

    def counting(*args):
        calls[0] += 1
        return original(*args)

    monkeypatch.setattr(runner, "code_baseline", counting)
    return calls


def test_end_to_end_and_resume(folder: Path, tmp_path: Path, fake_model, monkeypatch, capsys) -> None:
    fake, weights = fake_model
    calls = _count_baseline_calls(monkeypatch)
    out = tmp_path / "out"
    argv = ["eval", str(folder), "--models", str(weights), "--baselines", "jpeg", "--qualities",
            "jpeg=10,30,60,90", "fake=1,2,4,6", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "16 points computed, 0 from the cache" in printed
    assert "BD-rate against **jpeg**" in printed
    assert calls[0] == 8 and fake.encodes == 8
    for name in ("jpeg.json", "fake.json", "results.csv", "rd.png", "bd_rate.md", "summary.json"):
        assert (out / name).is_file(), name
    # The cache is outside the results folder: .cache/eval/<dataset>.jsonl in the current folder.
    cache = tmp_path / ".cache" / "eval" / "images.jsonl"
    assert cache.is_file() and not (out / "cache.jsonl").exists()
    assert "cache .cache/eval/images.jsonl" in printed
    curve = json.loads((out / "jpeg.json").read_text())
    assert curve["name"] == "jpeg"
    results = curve["results"]
    assert set(results) >= {"bpp", "psnr-rgb", "ms-ssim", "encoding_time", "decoding_time"}
    assert len(results["bpp"]) == 4 and results["bpp"] == sorted(results["bpp"])
    assert all(0 < v <= 1 for v in results["ms-ssim"])
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 16 and {r["codec"] for r in rows} == {"jpeg", "fake"}
    jpeg_row = next(r for r in rows if r["codec"] == "jpeg" and r["quality"] == "30" and r["image"] == "img0.png")
    data = Image.fromarray(_image(192, 0))
    buffer = io.BytesIO()
    data.save(buffer, format="JPEG", quality=30, subsampling=2, optimize=True)
    assert int(jpeg_row["bytes"]) == len(buffer.getvalue())
    assert float(jpeg_row["bpp"]) == pytest.approx(len(buffer.getvalue()) * 8 / 192**2, rel=1e-5)
    table = (out / "bd_rate.md").read_text()
    assert "| jpeg | +0.00 % |" in table and "| fake |" in table

    # Same arguments again: everything comes from the cache.
    assert main(argv) == 0
    assert "0 points computed, 16 from the cache" in capsys.readouterr().out
    assert calls[0] == 8 and fake.encodes == 8

    # An interrupted run (last record truncated) resumes: only the missing point is redone.
    lines = cache.read_text().splitlines(keepends=True)
    cache.write_text("".join(lines[:-1]) + lines[-1][:20])
    assert main(argv) == 0
    assert "1 points computed, 15 from the cache" in capsys.readouterr().out
    assert calls[0] + fake.encodes == 17

    # --fresh recomputes everything; the next plain run uses the new records.
    assert main(argv + ["--fresh"]) == 0
    assert "16 points computed, 0 from the cache" in capsys.readouterr().out
    assert calls[0] + fake.encodes == 33
    assert main(argv) == 0
    assert "0 points computed, 16 from the cache" in capsys.readouterr().out
    assert len(ResultStore(cache)) == 16


def test_results_folder_rerun_from_scratch(folder: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """A results folder checked out elsewhere (with an old OUT/cache.jsonl) is really recomputed."""
    calls = _count_baseline_calls(monkeypatch)
    out = tmp_path / "results" / "images"
    argv = ["eval", str(folder), "--models", "", "--baselines", "jpeg", "--qualities", "20,70",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    capsys.readouterr()
    # The committed layout of before: the cache inside the results folder. A fresh checkout has it
    # but not the developer's .cache/.
    (tmp_path / ".cache" / "eval" / "images.jsonl").rename(out / "cache.jsonl")
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "4 points computed, 0 from the cache" in captured.out and calls[0] == 8
    assert f"codec eval: note: {out / 'cache.jsonl'} is not read" in captured.err

    # --no-cache: computed again, and no cache file is read or written.
    (tmp_path / ".cache" / "eval" / "images.jsonl").unlink()
    assert main(argv + ["--no-cache"]) == 0
    assert "4 points computed, 0 from the cache (no cache)" in capsys.readouterr().out
    assert not (tmp_path / ".cache" / "eval" / "images.jsonl").exists()

    # --cache FILE: that file, wherever it is.
    own = tmp_path / "elsewhere" / "c.jsonl"
    assert main(argv + ["--cache", str(own)]) == 0
    assert main(argv + ["--cache", str(own)]) == 0
    assert "0 points computed, 4 from the cache" in capsys.readouterr().out and len(ResultStore(own)) == 4
    with pytest.raises(SystemExit):  # argparse: --cache and --no-cache exclude each other
        main(argv + ["--cache", str(own), "--no-cache"])


def _without_jxl_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make pillow-jxl-plugin look uninstalled: no module, no package metadata."""
    monkeypatch.setitem(sys.modules, "pillow_jxl", None)  # `import pillow_jxl` raises ImportError
    real_version = importlib.metadata.version

    def version(name: str) -> str:
        if name == "pillow-jxl-plugin":
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(importlib.metadata, "version", version)


def test_missing_jxl_plugin(folder: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    _without_jxl_plugin(monkeypatch)
    # Default baselines: jxl is skipped with a one-line note, the others run.
    out = tmp_path / "out"
    assert main(["eval", str(folder), "--models", "", "--qualities", "50", "--out", str(out), "--no-progress"]) == 0
    captured = capsys.readouterr()
    note = "codec eval: note: jxl skipped (pillow-jxl-plugin is not installed)"
    assert [line for line in captured.err.splitlines() if "jxl" in line] == [note]
    assert "Traceback" not in captured.err and "PackageNotFoundError" not in captured.err
    assert (out / "jpeg.json").is_file() and not (out / "jxl.json").exists()
    assert "| jxl |" not in (out / "bd_rate.md").read_text()

    # Named explicitly: a one-line error before any work (no output folder, no cache).
    out2 = tmp_path / "out2"
    assert main(["eval", str(folder), "--models", "", "--baselines", "jpeg,jxl", "--out", str(out2)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("codec eval: error: baseline jxl is not available: pillow-jxl-plugin is not installed")
    assert "pip install pillow-jxl-plugin" in err
    assert not out2.exists()

    # The library functions themselves do not raise PackageNotFoundError either.
    from codec.evaluation import baselines

    assert "pillow-jxl-plugin" in baselines.library_version("JXL")
    with pytest.raises(baselines.MissingPluginError, match="pillow-jxl-plugin"):
        baselines.get_baseline("jxl").encode(_image(16, 0), 50)


def test_small_image_skipped_by_model_and_corrupt_file(folder: Path, tmp_path: Path, fake_model, capsys) -> None:
    _, weights = fake_model
    Image.fromarray(_image(64, 5)).save(folder / "small.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "out"
    assert main(["eval", str(folder), "--models", str(weights), "--baselines", "jpeg", "--qualities", "jpeg=20,80",
                 "fake=2,5", "--out", str(out), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "broken.png" in captured.err and "unreadable image" in captured.err
    assert "small.png" in captured.err and "too small" in captured.err
    assert "MS-SSIM is NaN for 1 image(s)" in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert {s["item"] for s in summary["skipped"]} == {"broken.png", "small.png"}
    assert summary["ms_ssim_nan_images"] == ["small.png"]
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(r["codec"], r["image"]) for r in rows if r["image"] == "small.png"} == {("jpeg", "small.png")}
    assert all(r["ms_ssim"] == "nan" for r in rows if r["image"] == "small.png")


def test_bad_inputs_are_one_line_errors(tmp_path: Path, folder: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    assert main(["eval", str(empty), "--models", "", "--out", str(tmp_path / "o1")]) == 1
    assert "no images in" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing"), "--models", "", "--out", str(tmp_path / "o2")]) == 1
    err = capsys.readouterr().err
    assert "no such folder" in err and err.count("\n") == 1
    assert main(["eval", str(folder), "--models", "", "--baselines", "jpeg,gif", "--out", str(tmp_path / "o3")]) == 1
    assert "unknown baseline 'gif'" in capsys.readouterr().err
    assert main(["eval", str(folder), "--models", "nosuchmodel", "--baselines", "", "--out", str(tmp_path / "o4")]) == 1
    assert "nosuchmodel" in capsys.readouterr().err
    assert main(["eval", str(folder), "--models", "", "--baselines", "jpeg", "--qualities", "webp=10",
                 "--out", str(tmp_path / "o5")]) == 1
    assert "not evaluated: webp" in capsys.readouterr().err
    assert not (tmp_path / "o3").exists()


def test_all_images_corrupt(tmp_path: Path, capsys) -> None:
    d = tmp_path / "bad"
    d.mkdir()
    (d / "a.png").write_bytes(b"nope")
    assert main(["eval", str(d), "--models", "", "--baselines", "jpeg", "--out", str(tmp_path / "o")]) == 1
    assert "no readable images" in capsys.readouterr().err


def test_compare_external_json(folder: Path, tmp_path: Path, capsys) -> None:
    external = tmp_path / "published.json"
    external.write_text(json.dumps({"name": "published", "description": "x",
                                    "results": {"bpp": [0.2, 0.5, 1.0, 2.0], "psnr": [24.0, 28.0, 31.0, 35.0]}}))
    out = tmp_path / "out"
    assert main(["eval", str(folder), "--models", "", "--baselines", "jpeg", "--qualities", "10,40,80",
                 "--compare", str(external), "--anchor", "published", "--out", str(out), "--no-progress"]) == 0
    table = (out / "bd_rate.md").read_text()
    assert "against **published**" in table and "| published (external) | +0.00 % |" in table
    assert not (out / "published.json").exists()


# --- progress: an honest ETA -----------------------------------------------------------------------

def test_eta_estimate_weights_points_by_codec_cost() -> None:
    images = [runner.ImageItem(Path(f"i{k}.png"), f"i{k}.png", str(k) * 64, 1000, 1000) for k in range(4)]
    fast = runner.CodecSpec("jpeg", "", "jpeg-settings", (10.0, 50.0))
    model = learned.ModelSpec("walloc", "walloc", "", "model|x", (1.0, 6.0), (1.0,))
    slow = runner.CodecSpec("walloc", "", "model|x", (1.0, 4.0), model=model)
    work = [(c, q, im) for im in images for c in (fast, slow) for q in c.qualities]
    truth = {"jpeg": 0.1, "walloc": 2.0}  # seconds per point (1 Mpx images)

    eta = runner.EtaEstimate(work)
    prior = runner.COST_PRIOR_S_PER_MPX
    assert eta.remaining_seconds() == pytest.approx(8 * prior["jpeg"] + 8 * prior["walloc"])
    # The first image's jpeg points: walloc, not measured yet, is its prior scaled by this machine's speed.
    for q in fast.qualities:
        eta.done(fast, images[0], truth["jpeg"])
    speed = truth["jpeg"] / prior["jpeg"]
    assert eta.seconds_per_mpx("walloc") == pytest.approx(prior["walloc"] * speed)
    # After the first image every codec is measured: the estimate is the true remaining time,
    # although 6 of the 8 points left are slow ones.
    for q in slow.qualities:
        eta.done(slow, images[0], truth["walloc"])
    assert eta.remaining_seconds() == pytest.approx(6 * truth["jpeg"] + 6 * truth["walloc"])
    # Baselines in 2 worker processes: their part of the time is halved, the models' is not.
    parallel = runner.EtaEstimate(work, jobs=2)
    for c in (fast, slow):
        for _ in c.qualities:
            parallel.done(c, images[0], truth[c.name])
    assert parallel.remaining_seconds() == pytest.approx(6 * truth["jpeg"] / 2 + 6 * truth["walloc"])
    # A point skipped without work (a model refused the image) counts as done, not as measured.
    eta.done(slow, images[1], None)
    assert eta.seconds_per_mpx("walloc") == pytest.approx(truth["walloc"])


def test_grid_runs_image_by_image_with_eta(folder: Path, fake_model, monkeypatch, capsys) -> None:
    """Every codec on the first image, then on the next: the rate so far is representative."""
    from codec.evaluation.pipeline import build_codecs

    fake, weights = fake_model
    events: list[str] = []
    original_baseline, original_encode = runner.code_baseline, fake.encode
    monkeypatch.setattr(runner, "code_baseline", lambda *a: events.append("jpeg") or original_baseline(*a))
    from codec import api

    monkeypatch.setattr(api, "encode", lambda *a, **k: events.append("fake") or original_encode(*a, **k))
    codecs = build_codecs([str(weights)], ["jpeg"], ["jpeg=20,60", "fake=1,4"])
    images, _ = runner.scan_images(sorted(folder.iterdir()), folder)
    outcome = runner.run_grid(codecs, images, ResultStore(None), progress=True)
    assert outcome.computed == 8
    assert events == ["jpeg", "jpeg", "fake", "fake"] * 2
    err = capsys.readouterr().err
    assert "ETA" in err and "points" in err


# --- downloads -----------------------------------------------------------------------------------

@pytest.fixture
def http_root(tmp_path: Path):
    root = tmp_path / "served"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_named_dataset(http_root, tmp_path: Path, monkeypatch, capsys) -> None:
    root, base = http_root
    sums = {}
    for i in range(2):
        Image.fromarray(_image(192, i)).save(root / f"p{i}.png")
        sums[f"p{i}.png"] = hashlib.sha256((root / f"p{i}.png").read_bytes()).hexdigest()
    good = datasets.Dataset("fake", "test", files={n: (f"{base}/{n}", s) for n, s in sums.items()})
    monkeypatch.setitem(datasets.DATASETS, "fake", good)
    cache = tmp_path / "cache"
    name, paths = datasets.resolve_dataset("fake", cache)
    assert name == "fake" and [p.name for p in paths] == ["p0.png", "p1.png"]
    assert all(p.read_bytes() == (root / p.name).read_bytes() for p in paths)

    # Through the CLI, with the cache folder from the environment.
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "envcache"))
    assert main(["eval", "fake", "--models", "", "--baselines", "jpeg", "--qualities", "50",
                 "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert (tmp_path / "envcache" / "fake" / "p1.png").is_file()

    # A checksum mismatch: clear error, nothing left behind.
    bad = datasets.Dataset("bad", "test", files={"p0.png": (f"{base}/p0.png", "0" * 64)})
    monkeypatch.setitem(datasets.DATASETS, "bad", bad)
    with pytest.raises(InputError, match="SHA-256 mismatch"):
        datasets.resolve_dataset("bad", cache)
    assert list((cache / "bad").iterdir()) == []

    # Offline / unreachable: a message on how to pass a local folder.
    off = datasets.Dataset("off", "test", files={"p0.png": ("http://127.0.0.1:9/p0.png", None)})
    monkeypatch.setitem(datasets.DATASETS, "off", off)
    assert main(["eval", "off", "--models", "", "--cache-dir", str(cache), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "cannot download dataset 'off'" in err and "local folder" in err
    assert not (cache / "off").exists()  # an empty folder would pass for the dataset next time


def test_download_zip_archive(http_root, tmp_path: Path, monkeypatch) -> None:
    import zipfile

    root, base = http_root
    with zipfile.ZipFile(root / "set.zip", "w") as zf:
        for i in range(2):
            buffer = io.BytesIO()
            Image.fromarray(_image(64, i)).save(buffer, "PNG")
            zf.writestr(f"valid/z{i}.png", buffer.getvalue())
    (root / "broken.zip").write_bytes(b"PK\x03\x04 not a zip")
    monkeypatch.setitem(datasets.DATASETS, "zipped", datasets.Dataset("zipped", "t", archive_url=f"{base}/set.zip"))
    _, paths = datasets.resolve_dataset("zipped", tmp_path / "c")
    assert [p.name for p in paths] == ["z0.png", "z1.png"]
    monkeypatch.setitem(datasets.DATASETS, "broken", datasets.Dataset("broken", "t", archive_url=f"{base}/broken.zip"))
    with pytest.raises(InputError, match="not a valid zip"):
        datasets.resolve_dataset("broken", tmp_path / "c")
    assert not (tmp_path / "c" / "broken.zip").exists() and not (tmp_path / "c" / "broken").exists()


# --- a real (tiny, untrained) learned model ---------------------------------------------------------

def test_real_tiny_model(folder: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("codec._rangecoder")
    pytest.importorskip("codec.api")
    from codec.models.weights import build_model, save_weights

    config = {"latent_channels": 8, "levels": 3, "wavelet": "bior4.4", "decoder_channels": 16,
              "decoder_blocks": 1, "hyper_channels": 16, "z_channels": 8}
    weights = tmp_path / "tiny.safetensors"
    save_weights(build_model("walloc", config), weights, architecture="walloc", config=config)
    out = tmp_path / "out"
    argv = ["eval", str(folder), "--models", str(weights), "--baselines", "jpeg", "--qualities", "jpeg=20,60",
            "tiny=1,6", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    curve = json.loads((out / "tiny.json").read_text())
    assert len(curve["results"]["bpp"]) == 2 and all(b > 0 for b in curve["results"]["bpp"])
    assert all(math.isfinite(p) for p in curve["results"]["psnr-rgb"])
    capsys.readouterr()
    assert main(argv) == 0
    assert "0 points computed" in capsys.readouterr().out


def test_parallel_jobs_match_serial(folder: Path, tmp_path: Path) -> None:
    common = ["--models", "", "--baselines", "jpeg", "--qualities", "20,70", "--no-progress", "--no-cache"]
    assert main(["eval", str(folder), *common, "--out", str(tmp_path / "serial")]) == 0
    assert main(["eval", str(folder), *common, "--jobs", "2", "--out", str(tmp_path / "parallel")]) == 0

    def sizes(out: Path) -> dict:
        with open(out / "results.csv", newline="") as f:
            return {(r["codec"], r["quality"], r["image"]): (r["bytes"], r["psnr"]) for r in csv.DictReader(f)}

    assert sizes(tmp_path / "serial") == sizes(tmp_path / "parallel") and len(sizes(tmp_path / "serial")) == 4


def test_retired_weights_are_evaluated_by_their_path():
    """Weights kept as NAME@HASH are no longer reachable by name: eval codes them by path,
    under the model's name."""
    from codec import zoo
    from codec.evaluation.learned import model_spec

    retired = [e for e in zoo.all_versions() if "@" in e.path.stem]
    if not retired:
        pytest.skip("no retired weights in this checkout")
    spec = model_spec(str(retired[0].path))
    assert spec.name == retired[0].name and spec.ref == str(retired[0].path)
    current = zoo.shipped_models()[0]
    assert model_spec(current.name).ref == current.name


def test_curve_styles_keep_a_family_in_one_colour_and_every_curve_apart():
    from codec.evaluation.report import curve_styles

    names = ["jpeg", "webp", "walloc", "walloc-effort1", "walloc-effort4", "walloc-cc", "walloc-cc-effort2"]
    styles = curve_styles(names)
    assert len(set(styles.values())) == len(names)  # no two curves look alike
    assert len({styles[n][0] for n in names}) == len(names)
    # paler at lower efforts: the sum of RGB falls within a family as the effort rises
    assert sum(styles["walloc"][0][:3]) > sum(styles["walloc-effort1"][0][:3]) > sum(styles["walloc-effort4"][0][:3])
    assert styles["walloc-effort1"][1] != styles["walloc"][1]
