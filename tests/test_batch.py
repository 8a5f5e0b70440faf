"""Batch coding (issue 9): `codec encode/decode INPUT... -o OUTDIR [--jobs N]`, in process and
with worker processes; the single-file form unchanged."""
import numpy as np
import pytest
from PIL import Image

from codec.cli import main


def _image(path, seed=0, size=(32, 48)):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture()
def photos(tmp_path):
    """A folder of three images (two formats) with things batch mode must leave out, and one
    more image elsewhere."""
    folder = tmp_path / "photos"
    folder.mkdir()
    _image(folder / "b.png", 1)
    _image(folder / "a.png", 2)
    _image(folder / "c.bmp", 3)
    _image(folder / ".hidden.png", 4)
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub").mkdir()
    _image(folder / "sub" / "deep.png", 5)
    extra = tmp_path / "elsewhere"
    extra.mkdir()
    _image(extra / "d.png", 6)
    return folder, extra / "d.png"


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_batch_encode_jobs_1_and_2_are_byte_identical_and_decode_back(tmp_path, photos, tiny_weights, capsys):
    folder, extra = photos
    model = ["--model", str(tiny_weights), "--quality", "2"]
    assert main(["encode", str(folder), str(extra), "-o", str(tmp_path / "one"), *model]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5 and out[-1].startswith("encoded 4 files:")
    assert "mean" in out[-1] and "bpp" in out[-1] and "files/s" in out[-1]
    assert out[0].startswith(f"{folder / 'a.png'} -> {tmp_path / 'one' / 'a.bin'}: ") and "bpp (48x32)" in out[0]

    assert main(["encode", str(folder), str(extra), "-o", str(tmp_path / "two"), "--jobs", "2", *model]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("encoded 4 files:")
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert sorted(one) == ["a.bin", "b.bin", "c.bin", "d.bin"]
    assert one == two

    # The same bytes as the single-file form.
    assert main(["encode", str(folder / "a.png"), str(tmp_path / "single.bin"), *model]) == 0
    assert (tmp_path / "single.bin").read_bytes() == one["a.bin"]

    assert main(["decode", str(tmp_path / "one"), "-o", str(tmp_path / "back"), "--model", str(tiny_weights)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("decoded 4 files:") and "files/s" in out[-1]
    assert sorted(_files(tmp_path / "back")) == ["a.png", "b.png", "c.png", "d.png"]
    assert main(["decode", str(tmp_path / "single.bin"), str(tmp_path / "single.png"), "--model", str(tiny_weights)]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "back" / "a.png")), np.asarray(Image.open(tmp_path / "single.png")))
    assert Image.open(tmp_path / "back" / "d.png").size == (48, 32)


def test_a_failing_file_is_listed_and_the_others_are_written(tmp_path, tiny_weights, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _image(folder / "a.png", 1)
    (folder / "bad.png").write_bytes((folder / "a.png").read_bytes()[:60])  # a truncated PNG
    _image(folder / "c.png", 2)
    out = tmp_path / "out"
    assert main(["encode", str(folder), "-o", str(out), "--model", str(tiny_weights)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    err = captured.err.strip().splitlines()
    assert err[0] == "codec encode: error: 1 of 3 files failed:"
    assert len(err) == 2 and err[1].startswith(f"  {folder / 'bad.png'}: ")
    assert "encoded 2 files" in captured.out and "1 failed" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["a.bin", "c.bin"]  # no partial or temporary file

    # Decode: a corrupt bitstream among good ones.
    (out / "junk.bin").write_bytes(b"\x89LIC" + b"\x00" * 40)
    assert main(["decode", str(out), "-o", str(tmp_path / "back"), "--model", str(tiny_weights)]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert err[0] == "codec decode: error: 1 of 3 files failed:" and err[1].startswith(f"  {out / 'junk.bin'}: ")
    assert "Traceback" not in captured.err
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == ["a.png", "c.png"]


def test_refusals_come_before_any_work(tmp_path, photos, tiny_weights, capsys, monkeypatch):
    from codec import api

    def never(*args, **kwargs):
        raise AssertionError("coding started before the inputs and outputs were checked")

    monkeypatch.setattr(api, "encode", never)
    monkeypatch.setattr(api, "decode", never)
    folder, extra = photos
    (tmp_path / "more").mkdir()
    _image(tmp_path / "more" / "a.jpg")
    (tmp_path / "empty").mkdir()
    (tmp_path / "bins").mkdir()
    (tmp_path / "bins" / "a.bin").write_bytes(b"x")
    out = str(tmp_path / "out")
    cases = [
        (["encode", str(folder), str(tmp_path / "more"), "-o", out], "would both be written to"),
        (["encode", str(folder), str(folder / "a.png"), "-o", out], "is given twice"),
        (["encode", str(tmp_path / "bins" / "a.bin"), "-o", str(tmp_path / "bins")], "is the input file"),
        (["decode", str(tmp_path / "empty"), "-o", out], "no .bin files found"),
        (["encode", str(tmp_path / "empty"), "-o", out], "no image files found"),
        (["encode", str(tmp_path / "gone"), "-o", out], "no such file"),
        (["encode", "-", "-o", out], "standard input"),
        (["encode", str(folder), "-o", str(tmp_path / "nowhere" / "out")], "does not exist"),
        (["encode", str(folder), "-o", str(extra)], "is a file"),
        (["encode", str(folder), "-o", out, "--model", str(tiny_weights), "--quality", "100"], "outside the range"),
        (["decode", str(tmp_path / "bins"), "-o", out, "--format", "nope"], "unknown image extension"),
        (["encode", str(extra), "-o", str(tmp_path / "x.bin")], "looks like a file name"),
        (["decode", str(tmp_path / "bins"), "-o", str(tmp_path / "x.png")], "looks like a file name"),
    ]
    for args, message in cases:
        assert main(args) == 1, args
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (args, err)
    with pytest.raises(SystemExit) as usage:  # a usage error: the usage lines, then the message
        main(["encode", str(extra), str(tmp_path / "x.bin"), "--jobs", "2"])
    assert usage.value.code == 2 and "needs -o OUTDIR" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "x.bin").exists() and not (tmp_path / "x.png").exists()


def test_existing_outputs_are_overwritten_or_skipped(tmp_path, tiny_weights, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _image(folder / "a.png", 1)
    _image(folder / "b.png", 2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.bin").write_bytes(b"old")
    assert main(["encode", str(folder), "-o", str(out), "--model", str(tiny_weights), "--skip-existing"]) == 0
    captured = capsys.readouterr().out
    assert f"{folder / 'a.png'}: skipped" in captured and "encoded 1 file:" in captured and "1 skipped" in captured
    assert (out / "a.bin").read_bytes() == b"old" and (out / "b.bin").exists()
    assert main(["encode", str(folder), "-o", str(out), "--model", str(tiny_weights)]) == 0
    assert (out / "a.bin").read_bytes()[:4] == b"\x89LIC"
    assert main(["decode", str(out / "a.bin"), "-o", str(tmp_path / "bmp"), "--format", "bmp",
                 "--model", str(tiny_weights)]) == 0
    assert Image.open(tmp_path / "bmp" / "a.bmp").format == "BMP"


def test_single_file_form_unchanged(tmp_path, tiny_weights, capsys):
    image = _image(tmp_path / "photo.png")
    assert main(["encode", str(image), str(tmp_path / "photo.bin"), "--model", str(tiny_weights)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{tmp_path / 'photo.bin'}: ") and "bpp (48x32, model tiny, quality 3," in line
    assert main(["decode", str(tmp_path / "photo.bin"), str(tmp_path / "back.png"), "--model", str(tiny_weights)]) == 0
    assert capsys.readouterr().out.strip().startswith(f"{tmp_path / 'back.png'}: 48x32 RGB (")
    for args in (["encode", str(image)], ["encode", str(image), "a.bin", "b.bin"], ["decode", str(tmp_path / "photo.bin")]):
        with pytest.raises(SystemExit) as exit_:
            main(args)
        assert exit_.value.code == 2
        assert "usage:" in capsys.readouterr().err


def test_a_model_that_cannot_load_is_one_line_and_leaves_nothing(tmp_path, tiny_weights, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    _image(tmp_path / "a.png")
    out = tmp_path / "out"
    assert main(["encode", str(tmp_path / "a.png"), "-o", str(out), "--model", str(tiny_weights), "--device", "cuda"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "codec encode: error: device 'cuda' requested but no CUDA GPU is available"
    assert not out.exists()
