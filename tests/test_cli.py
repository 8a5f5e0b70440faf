"""The `codec` command line end to end, by subprocess."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


def _codec(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "codec", *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture()
def photo(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(path)
    return path


def test_encode_info_decode(tmp_path, photo, tiny_weights):
    out = _codec("encode", photo, tmp_path / "photo.bin", "--model", tiny_weights, "--quality", "2")
    assert out.returncode == 0, out.stderr
    assert "bpp" in out.stdout
    info = _codec("info", tmp_path / "photo.bin")
    assert info.returncode == 0 and "50x40" in info.stdout and "quality" in info.stdout and "CRC-32" in info.stdout
    dec = _codec("decode", tmp_path / "photo.bin", tmp_path / "back.png", "--model", tiny_weights)
    assert dec.returncode == 0, dec.stderr
    assert Image.open(tmp_path / "back.png").size == (50, 40)


def test_errors_are_one_line_and_leave_no_file(tmp_path, photo, tiny_weights, capsys):
    """In process (fast): exit status 1, one stderr line, no file written."""
    from codec.cli import main

    (tmp_path / "junk.bin").write_bytes(b"\x89LIC" + b"\x00" * 40)
    cases = [
        ("decode", tmp_path / "junk.bin", tmp_path / "x.png"),
        ("encode", tmp_path / "missing.png", tmp_path / "x.bin"),
        ("encode", photo, photo),  # never overwrite the input
        ("encode", photo, tmp_path / "x.bin", "--model", tiny_weights, "--quality", "100"),
        ("info", tmp_path / "junk.bin"),
    ]
    for args in cases:
        assert main([str(a) for a in args]) == 1, args
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith(f"codec {args[0]}: error:"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.bin", "photo.png"]


def test_error_by_subprocess_has_no_traceback(tmp_path):
    (tmp_path / "junk.bin").write_bytes(b"not a codec file")
    out = _codec("decode", tmp_path / "junk.bin", tmp_path / "x.png")
    assert out.returncode == 1 and out.stderr.strip() == "codec decode: error: not a codec file (wrong magic number)"
    assert not (tmp_path / "x.png").exists()


def test_conversion_warning_for_rgba(tmp_path, tiny_weights):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 3] = 100
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = _codec("encode", tmp_path / "a.png", tmp_path / "a.bin", "--model", tiny_weights)
    assert out.returncode == 0 and "warning: RGBA image: the alpha channel" in out.stderr


def test_models_lists_both(capsys):
    from codec.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "walloc" in out and "hyperprior" in out and "1-6" in out


def test_help_lists_subcommands(capsys):
    from codec.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("encode", "decode", "info", "models", "roundtrip", "eval"):
        assert command in out
