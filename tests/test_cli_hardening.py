"""What an adversarial audit of the command line found (twenty-first session): each case is
a one-line error before any work, or a warning, never a traceback or a damaged file."""
import io
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from codec import bitstream
from codec.cli import main
from codec.errors import BitstreamError, InputError


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _one_error(capsys, command: str, args) -> str:
    assert main([command, *map(str, args)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"codec {command}: error:"), err
    return err


@pytest.fixture()
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture()
def coded(tmp_path, photo, tiny_weights):
    path = tmp_path / "photo.bin"
    assert main(["encode", str(photo), str(path), "--model", str(tiny_weights)]) == 0
    return path


def test_bitstream_read_stops_at_the_announced_length(coded):
    data = coded.read_bytes()
    assert bitstream.announced_length(data[:10]) is None and bitstream.announced_length(data[:200]) == len(data)
    assert bitstream.read(io.BytesIO(data)) == data
    for prefix in (data[:-3], data[:30], b""):  # short files come back whole, for unpack to name
        assert bitstream.read(io.BytesIO(prefix)) == prefix
    with pytest.raises(BitstreamError, match="3 unexpected bytes"):
        bitstream.read(io.BytesIO(data + b"xyz"), len(data) + 3)

    class Endless(io.RawIOBase):  # /dev/zero: refused after its first chunk, never read whole
        reads = 0

        def readinto(self, buffer):
            self.reads += 1
            buffer[:] = bytes(len(buffer))
            return len(buffer)

    endless = Endless()
    with pytest.raises(BitstreamError, match="wrong magic"):
        bitstream.read(endless)
    assert endless.reads == 1


def test_huge_inputs_that_are_not_codec_files_fail_at_once(tmp_path, capsys):
    sparse = tmp_path / "sparse.bin"
    with open(sparse, "wb") as f:
        f.truncate(6 << 30)  # 6 GB of zeros, none of them on disk
    for command, args in (("info", [sparse]), ("decode", [sparse, tmp_path / "x.png"])):
        assert "wrong magic number" in _one_error(capsys, command, args)
    assert not (tmp_path / "x.png").exists()


def test_export_never_writes_over_its_checkpoint(tmp_path, capsys):
    checkpoint = tmp_path / "last.pt"
    torch.save({"architecture": "walloc", "model_config": {}, "step": 1, "model": {}}, checkpoint)
    before = checkpoint.read_bytes()
    assert "NAME.safetensors" in _one_error(capsys, "export", [checkpoint, checkpoint])
    card = tmp_path / "last.md"
    card_twin = tmp_path / "last.safetensors"
    os.link(checkpoint, card)  # the card's path is the checkpoint
    assert "is the input file" in _one_error(capsys, "export", [card, card_twin])
    assert checkpoint.read_bytes() == before and not card_twin.exists()


def test_export_of_a_bare_state_dict_is_one_line(tmp_path, capsys):
    for i, content in enumerate(({"conv.weight": torch.zeros(2)}, [1, 2],
                                 {"architecture": "walloc", "model_config": {}, "step": 1, "model": {}})):
        checkpoint = tmp_path / f"c{i}.pt"
        torch.save(content, checkpoint)
        err = _one_error(capsys, "export", [checkpoint, tmp_path / f"w{i}.safetensors"])
        assert "checkpoint" in err or "do not build" in err
        assert not (tmp_path / f"w{i}.safetensors").exists()


def test_weights_with_nan_are_refused(tmp_path, photo, tiny_weights, capsys):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(tiny_weights), "pt") as f:
        tensors, metadata = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    key = next(k for k, t in tensors.items() if k.startswith("h_s") and t.is_floating_point())
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    bad = tmp_path / "nan.safetensors"
    save_file(tensors, str(bad), metadata=metadata)
    assert "NaN" in _one_error(capsys, "encode", [photo, tmp_path / "x.bin", "--model", bad])
    assert not (tmp_path / "x.bin").exists()


def test_a_malformed_exif_block_is_ignored_with_a_warning(tmp_path, tiny_weights, capsys):
    good = tmp_path / "good.png"
    Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(good)
    raw = good.read_bytes()
    cut = raw.index(b"IDAT") - 4
    bad = tmp_path / "exif.png"
    bad.write_bytes(raw[:cut] + _png_chunk(b"eXIf", b"\x00\x01junk junk") + raw[cut:])
    assert main(["encode", str(bad), str(tmp_path / "x.bin"), "--model", str(tiny_weights)]) == 0
    err = capsys.readouterr().err
    assert err.strip() == "codec encode: warning: unreadable EXIF data ignored (no orientation applied)"


def test_sixteen_bit_colour_png_warns(tmp_path):
    from codec.errors import ConversionWarning
    from codec.image_io import load_image

    height, width = 4, 5
    rows = b"".join(b"\x00" + np.full((width, 3), 0x80FF, ">u2").tobytes() for _ in range(height))
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)) \
        + _png_chunk(b"IDAT", zlib.compress(rows)) + _png_chunk(b"IEND", b"")
    with pytest.warns(ConversionWarning, match="16-bit RGB samples reduced to 8 bits"):
        loaded = load_image(png)
    assert loaded.rgb.shape == (height, width, 3) and int(loaded.rgb.max()) == 128  # Pillow's high byte


def test_premultiplied_and_empty_inputs(tiny_weights):
    from codec.image_io import load_image

    from codec.errors import ConversionWarning

    for mode in ("La", "RGBa"):
        with pytest.warns(ConversionWarning, match="alpha channel is not coded"):  # all transparent
            assert load_image(Image.new(mode, (8, 8))).rgb.shape == (8, 8, 3)
    for source, message in ((np.zeros((0, 10, 3), np.uint8), "empty"), ("", "empty path"),
                            (b"not an image", "not a readable image")):
        with pytest.raises(InputError, match=message):
            load_image(source, lambda w, h: None)


@pytest.mark.parametrize("extension", [".ico", ".icns", ".gif", ".xbm", ".msp"])
def test_outputs_that_cannot_hold_the_image_are_refused_before_decoding(tmp_path, coded, extension, capsys):
    assert "cannot write the decoded image" in _one_error(capsys, "decode", [coded, tmp_path / f"x{extension}"])
    assert not (tmp_path / f"x{extension}").exists()


def test_eval_refuses_an_out_folder_inside_the_dataset(tmp_path, photo, capsys):
    for out in (tmp_path, tmp_path / "results"):
        assert "inside the dataset" in _one_error(capsys, "eval", [tmp_path, "--out", out, "--no-progress"])
    (tmp_path / "file").write_text("")
    assert "is a file" in _one_error(capsys, "eval", [tmp_path / "x", "--out", tmp_path / "file"])
    assert "is a folder" in _one_error(capsys, "eval", [tmp_path / "x", "--cache", tmp_path, "--out", tmp_path / "o"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "photo.png"]


def test_eval_takes_its_help_example_as_one_argument():
    from codec.cli.eval import quality_specs
    from codec.evaluation.pipeline import parse_qualities

    specs = quality_specs(["jpeg=10,20,30 walloc=1,2.5,4"])  # the help's example, quoted as shown
    assert specs == ["jpeg=10,20,30", "walloc=1,2.5,4"] == quality_specs(["jpeg=10,20,30", "walloc=1,2.5,4"])
    assert parse_qualities(specs) == ({"jpeg": [10, 20, 30], "walloc": [1, 2.5, 4]}, None)


def test_a_read_only_output_folder_is_refused_before_any_work(tmp_path, photo, capsys, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    if os.geteuid() == 0:  # root writes anywhere: make the check see what another user would
        real = os.access
        monkeypatch.setattr(os, "access", lambda path, mode: real(path, mode) and os.path.realpath(path) != str(folder))
    assert "not writable" in _one_error(capsys, "encode", [photo, folder / "x.bin"])
    assert "not writable" in _one_error(capsys, "encode", [photo, "-o", folder])


def test_a_closed_pipe_is_quiet(coded):
    done = subprocess.run(f"{sys.executable} -m codec info {coded} | head -c 1", shell=True, capture_output=True)
    assert b"Traceback" not in done.stderr and b"Broken pipe" not in done.stderr


def test_library_calls_take_tile(photo, tiny_weights):
    import codec

    data = codec.encode(str(photo), model=str(tiny_weights), tile=256)
    assert data == codec.encode(str(photo), model=str(tiny_weights))
    assert codec.decode(data, model=str(tiny_weights), tile="256x512").size == (50, 40)


@pytest.mark.parametrize("option", [("--threads", "0"), ("--minutes", "-1"), ("--minutes", "nan"), ("--workers", "-2"),
                                    ("--steps", "-5")])
def test_train_options_out_of_range_are_usage_errors(tmp_path, option, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--config", "c.json", "--out", str(tmp_path / "run"), *option])
    assert stop.value.code == 2 and f"argument {option[0]}" in capsys.readouterr().err


def test_train_refuses_a_file_as_its_run_folder(tmp_path, capsys):
    from pathlib import Path

    config = Path(__file__).resolve().parents[1] / "configs" / "walloc.json"
    (tmp_path / "run").write_text("")
    assert "not a run folder" in _one_error(capsys, "train", ["--config", config, "--out", tmp_path / "run",
                                                              "--data", tmp_path])


def test_an_endless_standard_input_is_refused(tmp_path, monkeypatch):
    from codec import image_io

    class Zeros(io.RawIOBase):  # /dev/zero
        def readable(self):
            return True

        def readinto(self, buffer):
            buffer[:] = bytes(len(buffer))
            return len(buffer)

    monkeypatch.setattr(image_io, "IDENTIFY_BYTES", 1 << 16)
    with pytest.raises(InputError, match="not a readable image"):
        image_io.read_image_stream(io.BufferedReader(Zeros()))
    png = io.BytesIO()
    Image.new("RGB", (8, 6)).save(png, format="PNG")
    assert image_io.read_image_stream(io.BytesIO(png.getvalue())) == png.getvalue()
    monkeypatch.setattr(image_io, "STREAM_SLACK", 1000)

    class PngThenZeros(Zeros):
        sent = False

        def readinto(self, buffer):
            if not self.sent:
                self.sent = True
                buffer[:len(png.getvalue())] = png.getvalue()
                return len(png.getvalue())
            return super().readinto(buffer)

    with pytest.raises(InputError, match="more than a 8x6 image can hold"):
        image_io.read_image_stream(io.BufferedReader(PngThenZeros()))


def test_encode_tensor_refuses_what_it_would_clamp(tiny_weights):
    from codec.api import encode_tensor

    x = torch.rand(2, 3, 32, 40)
    for bad, message in ((torch.rand(0, 3, 32, 32), "empty"), ((x * 255).to(torch.uint8), "floating-point"),
                         (x * 255, r"values in \[0, 1\]"), (x.clone().fill_(float("nan")), "NaN"),
                         (x + 0.01, r"values in \[0, 1\]")):
        with pytest.raises(InputError, match=message):
            encode_tensor(bad, str(tiny_weights), 2)
    assert len(encode_tensor(x.clamp(0, 1) + 0.001, str(tiny_weights), 2)) == 2  # within half a level


def test_refined_files_do_not_depend_on_the_place_in_the_batch(tiny_weights):
    from codec.api import encode_tensor

    x = torch.rand(3, 3, 32, 40, generator=torch.Generator().manual_seed(5))
    forward = encode_tensor(x, str(tiny_weights), 2, effort=1)
    assert encode_tensor(x.flip(0), str(tiny_weights), 2, effort=1)[::-1] == forward


def test_bd_table_zoo_records_only_whole_kodak_runs_and_keeps_other_anchors(tmp_path, monkeypatch):
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("bd_table", Path(__file__).resolve().parents[1] / "tools" / "bd_table.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    measured = tmp_path / "measured.json"
    measured.write_text(json.dumps({"aaaaaaaaaaaa": {"bd_rate_percent": {"jpeg": -40.0, "webp": -7.0}}}))
    monkeypatch.setattr(tool, "MEASURED_FILE", measured)
    run = tmp_path / "run"
    run.mkdir()
    curve = {"bpp": [0.2, 0.4, 0.8, 1.6], "psnr-rgb": [26.0, 29.0, 32.0, 35.0]}
    (run / "jpeg.json").write_text(json.dumps({"name": "jpeg", "results": curve}))
    (run / "m.json").write_text(json.dumps({"name": "m", "description": "weights sha256 aaaaaaaaaaaa", "results":
                                            dict(curve, bpp=[b * 0.6 for b in curve["bpp"]])}))
    (run / "summary.json").write_text(json.dumps({"dataset": "kodak", "images": ["one.png"]}))
    monkeypatch.setattr(sys, "argv", ["bd_table.py", str(run), "--anchors", "jpeg", "--zoo"])
    assert tool.main() == 1  # one image is not the Kodak figure `codec models` prints
    (run / "summary.json").write_text(json.dumps({"dataset": "kodak", "images": [f"kodim{i:02d}.png" for i in range(24)]}))
    assert tool.main() == 0
    entry = json.loads(measured.read_text())["aaaaaaaaaaaa"]["bd_rate_percent"]
    assert entry["webp"] == -7.0 and entry["jpeg"] == pytest.approx(-40.0, abs=0.1)


def test_decode_given_a_path_or_no_bytes_says_so():
    import codec
    from codec.api import decode_to_tensor

    with pytest.raises(InputError, match="not its path"):
        codec.decode("photo.bin")
    for bad in (None, ["abc"]):
        with pytest.raises(InputError, match="bytes"):
            decode_to_tensor(bad)


def test_tools_fail_in_one_line(tmp_path, tiny_weights):
    from pathlib import Path

    tools = Path(__file__).resolve().parents[1] / "tools"
    cases = [(["rebase_walloc_cc.py", tmp_path / "nope.safetensors", tiny_weights, tmp_path / "o.safetensors"], "not found"),
             (["rebase_walloc_cc.py", tiny_weights, tiny_weights, tmp_path / "o.safetensors"], "not walloc-cc"),
             (["bench_rate_control.py", tmp_path / "nowhere"], "No such file")]
    for (tool, *args), message in cases:
        done = subprocess.run([sys.executable, str(tools / tool), *map(str, args)], capture_output=True, text=True)
        assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert done.stderr.startswith(f"{tool[:-3]}: error:") and message in done.stderr
    assert not (tmp_path / "o.safetensors").exists()


def test_eval_cache_must_be_a_cache(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    assert "not a cache" in _one_error(capsys, "eval", [tmp_path / "x", "--cache", notes, "--out", tmp_path / "o"])
    assert notes.read_text() == "my notes\n"


def test_binary_output_to_a_terminal_is_refused(tmp_path, photo, tiny_weights, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    err = _one_error(capsys, "encode", [photo, "-", "--model", tiny_weights])
    assert "standard output is a terminal" in err


def test_an_output_with_a_trailing_slash_is_not_taken_as_a_file(tmp_path, photo, tiny_weights, capsys):
    err = _one_error(capsys, "encode", [photo, f"{tmp_path / 'out'}/", "--model", tiny_weights])
    assert "ends with a slash" in err and not (tmp_path / "out").exists()


def test_a_misplaced_option_is_named_by_its_subcommand(photo, capsys):
    with pytest.raises(SystemExit) as usage:
        main(["encode", str(photo), "x.bin", "--bogus"])
    err = capsys.readouterr().err
    assert usage.value.code == 2 and "codec encode: error: unrecognized arguments: --bogus" in err


def test_short_flags(tmp_path, photo, tiny_weights):
    long = tmp_path / "long.bin"
    short = tmp_path / "short.bin"
    assert main(["encode", str(photo), str(long), "--model", str(tiny_weights), "--quality", "2.5", "--effort", "0"]) == 0
    assert main(["encode", str(photo), str(short), "-m", str(tiny_weights), "-q", "2.5", "-e", "0"]) == 0
    assert long.read_bytes() == short.read_bytes()
