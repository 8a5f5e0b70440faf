"""tools/gpu_check.py: its cross-device stage and --verify, exercised on the CPU (GPU = "cpu")."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def gpu_check(monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "tools" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "GPU", "cpu")
    return module


def test_cross_device_files_verify_elsewhere(gpu_check, tmp_path, capsys):
    from codec import zoo

    report = gpu_check.Report()
    images = gpu_check.load_images(None, 0)
    gpu_check.stage_cross_device(report, images, tmp_path, entries=[zoo.model_entry("walloc")], qualities=(2.0,))
    (name, result), = report.stages.items()
    assert result["status"] == "PASS" and result["pairs"] == 1 and result["decode_failures"] == 0
    assert result["max_pixel_difference"] == 0  # both "devices" are this CPU
    capsys.readouterr()
    assert gpu_check.verify(tmp_path) == 0
    assert "1 of 1 files decoded here, 1 with the same pixels" in capsys.readouterr().out


def test_a_broken_file_fails_verification(gpu_check, tmp_path, capsys):
    import json
    import zipfile

    with zipfile.ZipFile(tmp_path / "cross_device.zip", "w") as archive:
        archive.writestr("bad.bin", b"not a codec file")
        archive.writestr("manifest.json", json.dumps([{"file": "bad.bin", "model": "walloc", "cuda_pixels_sha256": ""}]))
    assert gpu_check.verify(tmp_path) == 1
    assert "FAIL bad.bin" in capsys.readouterr().out
