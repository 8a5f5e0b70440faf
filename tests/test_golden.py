"""Golden files (tests/expected/, written by tools/make_golden.py, never by tests).

Every fixture file keeps decoding to the pixels pinned when it was written, in every later
release (exactly, or, where a float decoder rounds otherwise on another CPU or torch build,
within one level at a few pixels of its pinned PNG); today's encoder still writes the same
entropy-coded streams for the fixtures' input; the range coder's bytes for a fixed input are pinned.
"""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import codec
from codec import api, bitstream
from codec.cli.roundtrip import sample_image
from codec.entropy import rangecoder
from codec.zoo import WEIGHTS_DIR

EXPECTED = Path(__file__).resolve().parent / "expected"
MANIFEST = json.loads((EXPECTED / "golden.json").read_text())
#: Tolerance where the pinned hash fails (another CPU or torch build): the float synthesis
#: rounds a sample the other way where its value lies within float error of a half level.
MAX_LEVEL_DIFFERENCE = 1
MAX_DIFFERING_SHARE = 0.02


def _pixels_sha256(image: Image.Image) -> str:
    return hashlib.sha256(f"{image.mode} {image.size}\n".encode() + image.tobytes()).hexdigest()


def _crop() -> np.ndarray:
    with Image.open(sample_image()) as image:
        return np.asarray(image.convert("RGB").crop(tuple(MANIFEST["crop"]["box"]))).copy()


def _streams(data: bytes) -> list[tuple[str, list[bytes]]]:
    """The named entropy-coded streams of a file, in file order, whatever its format version."""
    return [(section.name, section.substreams) for section in bitstream.unpack(data)[1]]


def test_there_is_a_fixture_of_every_shipped_weights_file():
    weights = {entry["weights"] for entry in MANIFEST["files"].values()}
    assert weights == {p.name for p in WEIGHTS_DIR.glob("*.safetensors")}


def test_every_fixture_has_its_pinned_pixels():
    assert all((EXPECTED / f"{Path(name).stem}.png").exists() for name in MANIFEST["files"])


@pytest.mark.parametrize("name", sorted(MANIFEST["files"]))
def test_fixture_decodes_to_the_pinned_pixels(name):
    entry = MANIFEST["files"][name]
    data = (EXPECTED / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["file_sha256"], "fixture files are never rewritten"
    assert data[4] == entry["version"]
    decoded = codec.decode(data)
    if _pixels_sha256(decoded) == entry["pixels_sha256"]:
        return
    with Image.open(EXPECTED / f"{Path(name).stem}.png") as pinned:
        assert (decoded.mode, decoded.size) == (pinned.mode, pinned.size)
        difference = np.abs(np.asarray(decoded, dtype=np.int16) - np.asarray(pinned, dtype=np.int16))
    assert difference.max() <= MAX_LEVEL_DIFFERENCE, "a pixel moved by more than float rounding can"
    assert np.mean(difference > 0) <= MAX_DIFFERING_SHARE, "more pixels moved than float rounding moves"


@pytest.mark.parametrize("name", sorted(MANIFEST["files"]))
def test_encoder_writes_the_fixture_streams(name):
    """Same image, weights, quality and entropy parameters (float or integer): the same
    entropy-coded bytes as when the fixture was written (the whole file too while the format
    version is the same)."""
    entry = MANIFEST["files"][name]
    fixture = (EXPECTED / name).read_bytes()
    integer = entry.get("integer_parameters", False)
    assert bitstream.unpack(fixture)[0].integer_parameters == integer
    x = torch.from_numpy(_crop()).permute(2, 0, 1)[None].float() / 255
    data = api.encode_tensor(x, model=str(WEIGHTS_DIR / entry["weights"]), quality=entry["quality"],
                             integer_parameters=integer)[0]
    assert _streams(data) == _streams(fixture)
    if entry["version"] == bitstream.FORMAT_VERSION:
        assert data == fixture


def test_new_files_of_walloc_have_an_integer_parameters_fixture():
    assert any(entry["weights"] == "walloc.safetensors" and entry.get("integer_parameters")
               and entry["version"] == bitstream.FORMAT_VERSION for entry in MANIFEST["files"].values())


def test_range_coder_bytes_are_pinned():
    pinned = MANIFEST["coder"]
    arrays = {k: np.asarray(v, dtype=np.int32) for k, v in pinned["input"].items()}
    data = rangecoder.encode(arrays["symbols"], arrays["indexes"], arrays["cdfs"], arrays["cdf_lengths"], arrays["offsets"])
    assert data.hex() == pinned["bytes"]
    decoded = rangecoder.decode(data, arrays["indexes"], arrays["cdfs"], arrays["cdf_lengths"], arrays["offsets"])
    assert decoded.tolist() == pinned["input"]["symbols"]
