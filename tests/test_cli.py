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


def test_models_lists_the_shipped_models_with_measured_figures(capsys):
    from codec import zoo
    from codec.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for entry in zoo.shipped_models():
        line = next(l for l in out.splitlines() if l.startswith(entry.name + " "))
        assert "1-6" in line and entry.sha256[:8] in line
        if entry.measured:  # the figures `codec models` prints are the recorded ones
            assert f"{entry.measured['bd_rate_percent']['jpeg']:+.1f} %" in line


def test_retired_weights_still_decode_their_files(tmp_path):
    """Weights that left the current zoo stay as NAME@HASH: files coded with them decode."""
    import codec
    from codec import zoo

    retired = [e for e in zoo.all_versions() if "@" in e.path.stem]
    if not retired:
        pytest.skip("no retired weights in this checkout")
    entry = retired[0]
    image = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    data = codec.encode(image, model=str(entry.path))
    assert codec.decode(data).size == (24, 16)


def test_help_lists_subcommands(capsys):
    from codec.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("encode", "decode", "info", "models", "roundtrip", "eval"):
        assert command in out


# Defects found by a new user (issue 9), each reproduced before the fix.

def _palette_png(path, colours=200):
    """A palette image whose entry 0 is transparent (so that coding it warns: the alpha is dropped)."""
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)).quantize(colours).save(path, transparency=0)
    return path


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_palette_and_gif_encode_with_one_warning(tmp_path, tiny_weights, suffix):
    """Palette input used to make the warning reporter append to the list it read: a runaway
    (then every palette image warned; now the transparent one does, for its alpha)."""
    image = _palette_png(tmp_path / f"p{suffix}")
    out = subprocess.run([sys.executable, "-c", (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30)); "
        "from codec.cli import main; sys.exit(main(sys.argv[1:]))"),
        "encode", str(image), str(tmp_path / "p.bin"), "--model", str(tiny_weights)],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr.strip() == "codec encode: warning: RGBA image: the alpha channel is not coded and was dropped"


def test_library_palette_encode_warns_nothing_but_the_conversion(tmp_path, tiny_weights):
    import warnings

    import codec
    from codec.errors import ConversionWarning

    image = _palette_png(tmp_path / "p.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        codec.encode(str(image), model=str(tiny_weights))
    assert [w.category for w in caught] == [ConversionWarning], [str(w.message) for w in caught]


def test_roundtrip_save_never_overwrites_the_input(tmp_path, photo, capsys):
    from codec.cli import main

    before = photo.read_bytes()
    assert main(["roundtrip", str(photo), "--save", str(tmp_path / "photo")]) == 1
    assert "is the input file" in capsys.readouterr().err
    assert photo.read_bytes() == before and not (tmp_path / "photo.bin").exists()


def test_roundtrip_with_a_weights_path(tmp_path, photo, tiny_weights, capsys):
    from codec.cli import main

    assert main(["roundtrip", str(photo), "--model", str(tiny_weights), "--save", str(tmp_path / "rt")]) == 0
    out = capsys.readouterr().out
    assert "PSNR-RGB" in out and (tmp_path / "rt.bin").exists() and (tmp_path / "rt.png").exists()


def test_a_copy_of_shipped_weights_is_the_shipped_model(tmp_path):
    """Same weights under another file name: same model name, same default quality, decodes
    without naming the file."""
    import shutil

    import codec
    from codec import bitstream, zoo

    shipped = zoo.shipped_models()[0]
    copy = tmp_path / "my copy.safetensors"
    shutil.copy(shipped.path, copy)
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    by_path = codec.encode(image, model=str(copy))
    assert by_path == codec.encode(image, model=shipped.name)
    assert bitstream.unpack(by_path)[0].model == shipped.name
    assert codec.decode(by_path).size == (16, 16)


def test_output_checks_come_before_the_work(tmp_path, photo, tiny_weights, capsys, monkeypatch):
    from codec import api
    from codec.cli import main

    def never(*args, **kwargs):
        raise AssertionError("coding started before the output was checked")

    monkeypatch.setattr(api, "encode", never)
    monkeypatch.setattr(api, "decode", never)
    (tmp_path / "x.bin").write_bytes(b"x")
    cases = [
        (["encode", str(photo), str(tmp_path / "missing" / "x.bin")], "does not exist"),
        (["encode", str(photo), str(tmp_path / "x.png")], "image extension"),
        (["decode", str(tmp_path / "x.bin"), str(tmp_path / "x.unknownext")], "unknown image extension"),
        (["decode", str(tmp_path / "x.bin"), str(tmp_path / "nowhere" / "x.png")], "does not exist"),
        (["roundtrip", str(photo), "--save", str(tmp_path / "nowhere" / "x")], "does not exist"),
    ]
    for args, message in cases:
        assert main(args) == 1, args
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_missing_input_is_worded_alike(tmp_path, capsys):
    from codec.cli import main

    for command, name in (("encode", "gone.png"), ("decode", "gone.bin"), ("info", "gone.bin")):
        args = [command, str(tmp_path / name)] + ([str(tmp_path / "out.x")] if command != "info" else [])
        assert main(args) == 1
        assert capsys.readouterr().err.strip() == f"codec {command}: error: {tmp_path / name}: no such file"


def test_stdin_and_stdout(tmp_path, photo, tiny_weights):
    encoded = subprocess.run([sys.executable, "-m", "codec", "encode", "-", "-", "--model", str(tiny_weights)],
                             input=photo.read_bytes(), capture_output=True)
    assert encoded.returncode == 0, encoded.stderr
    assert encoded.stdout[:4] == b"\x89LIC" and b"bpp" in encoded.stderr
    decoded = subprocess.run([sys.executable, "-m", "codec", "decode", "-", "-", "--model", str(tiny_weights)],
                             input=encoded.stdout, capture_output=True)
    assert decoded.returncode == 0, decoded.stderr
    assert decoded.stdout[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("content", [b"garbage bytes", b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}       "])
def test_bad_weights_file_is_one_line(tmp_path, photo, content, capsys):
    from codec.cli import main

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(content)
    assert main(["encode", str(photo), str(tmp_path / "x.bin"), "--model", str(bad)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "bad.safetensors" in err, err


def test_weights_with_wrong_config_or_tensors_are_one_line(tmp_path, photo, tiny_weights, capsys):
    from safetensors.torch import load_file, save_file

    from codec.cli import main
    from codec.zoo import read_metadata

    tensors, metadata = load_file(str(tiny_weights)), read_metadata(tiny_weights)
    wrong_config = tmp_path / "config.safetensors"
    save_file(tensors, str(wrong_config), metadata={**metadata, "config": '{"no_such_argument": 1}'})
    wrong_tensors = tmp_path / "tensors.safetensors"
    save_file({k: v for k, v in list(tensors.items())[1:]}, str(wrong_tensors), metadata=metadata)
    for bad in (wrong_config, wrong_tensors):
        assert main(["encode", str(photo), str(tmp_path / "x.bin"), "--model", str(bad)]) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and bad.name in err, err


def test_info_never_prints_control_characters(tmp_path, tiny_weights, capsys):
    import codec
    from codec import bitstream
    from codec.cli import main

    data = codec.encode(np.zeros((8, 8, 3), np.uint8), model=str(tiny_weights))
    header, sections = bitstream.unpack(data)
    # Forge a file whose model name holds an escape sequence (same length, valid CRC).
    name = "\x1b[2Jx"[: len(header.model)].ljust(len(header.model), "x")
    forged = bitstream.pack(header, sections).replace(header.model.encode(), b"@" * len(header.model), 1)
    import struct
    import zlib

    forged = forged.replace(b"@" * len(header.model), name.encode(), 1)
    payload = b"".join(s.payload for s in sections)
    head_end = len(forged) - len(payload) - 4
    crc = zlib.crc32(forged[:head_end] + payload) & 0xFFFFFFFF
    forged = forged[:head_end] + struct.pack("<I", crc) + forged[head_end + 4:]
    (tmp_path / "forged.bin").write_bytes(forged)
    assert main(["info", str(tmp_path / "forged.bin")]) == 1
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err


@pytest.mark.parametrize("args", [["models"], ["info", "FILE"], ["--help"], ["--version"], ["encode", "--help"]])
def test_quick_commands_do_not_import_torch(tmp_path, tiny_weights, args):
    """Listing models, reading a header or asking for help must not pay for torch (seconds)."""
    import codec

    (tmp_path / "x.bin").write_bytes(codec.encode(np.zeros((8, 8, 3), np.uint8), model=str(tiny_weights)))
    args = [str(tmp_path / "x.bin") if a == "FILE" else a for a in args]
    script = ("import sys\nfrom codec.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
              "print(sorted(m for m in ('torch', 'compressai', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_info_of_several_files_and_as_json(tmp_path, tiny_weights, capsys):
    import json

    from codec.cli import main

    photo = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(photo)
    coded = tmp_path / "p.bin"
    assert main(["encode", str(photo), str(coded), "--model", str(tiny_weights)]) == 0
    capsys.readouterr()
    assert main(["info", "--json", str(coded), str(tmp_path / "gone.bin"), str(coded)]) == 1
    out, err = capsys.readouterr()
    first, second = (json.loads(line) for line in out.splitlines())
    assert first == second and first["bytes"] == coded.stat().st_size and (first["width"], first["height"]) == (56, 40)
    assert sum(s["bytes"] for s in first["sections"]) + first["header_bytes"] == first["bytes"]
    assert err.strip() == f"codec info: error: {tmp_path / 'gone.bin'}: no such file"
    assert main(["info", str(coded), str(coded)]) == 0
    assert capsys.readouterr().out.count("CRC-32") == 2
