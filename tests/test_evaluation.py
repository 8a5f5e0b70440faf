"""Tests of `codec eval` (codec.evaluation): metrics, BD-rate, end-to-end runs, resume, bad input, downloads."""
from __future__ import annotations

import csv
import hashlib
import http.server
import io
import json
import math
import threading
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codec.cli import main
from codec.errors import InputError
from codec.evaluation import bd, datasets, learned, metrics, runner


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

    def encode(self, image, model, quality, device="cpu") -> bytes:
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
    weights = tmp_path / "fake.safetensors"
    weights.write_bytes(b"not really weights")
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
    for name in ("jpeg.json", "fake.json", "results.csv", "rd.png", "bd_rate.md", "summary.json", "cache.jsonl"):
        assert (out / name).is_file(), name
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
    lines = (out / "cache.jsonl").read_text().splitlines(keepends=True)
    (out / "cache.jsonl").write_text("".join(lines[:-1]) + lines[-1][:20])
    assert main(argv) == 0
    assert "1 points computed, 15 from the cache" in capsys.readouterr().out


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
    assert list((cache / "off").iterdir()) == []


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
    common = ["--models", "", "--baselines", "jpeg", "--qualities", "20,70", "--no-progress"]
    assert main(["eval", str(folder), *common, "--out", str(tmp_path / "serial")]) == 0
    assert main(["eval", str(folder), *common, "--jobs", "2", "--out", str(tmp_path / "parallel")]) == 0

    def sizes(out: Path) -> dict:
        with open(out / "results.csv", newline="") as f:
            return {(r["codec"], r["quality"], r["image"]): (r["bytes"], r["psnr"]) for r in csv.DictReader(f)}

    assert sizes(tmp_path / "serial") == sizes(tmp_path / "parallel") and len(sizes(tmp_path / "serial")) == 4
