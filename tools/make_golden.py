#!/usr/bin/env python
"""Write the golden fixtures of tests/test_golden.py: run by hand, on purpose, never by tests.

For every weights file in ``codec/zoo/weights/`` (current and retired versions), encodes a
fixed 96x64 crop of the bundled sample photograph with today's format and writes
``tests/expected/NAME-HASH_vN.bin`` (``HASH`` the first 8 hex digits of the weights' SHA-256,
``N`` the format version this code writes; ``_int`` for weights whose new files use integer
entropy parameters), then records in ``tests/expected/golden.json`` its SHA-256, the SHA-256
of the pixels it decodes to and of the weights, and keeps those pixels as
``tests/expected/NAME.png``: float decoders may round a few pixels the other way on another
CPU or torch build, where the hash then fails and the test compares with the PNG instead.
It also pins the bytes the range coder writes for a fixed symbol/index/table input.

A fixture is a promise that its file keeps decoding to the same pixels in every later
release, so existing files are never overwritten: a new format version or new weights add
new files (``--force`` rewrites, for a fixture that was wrong when it was written). When
``codec export --if-better`` retires weights (``NAME.safetensors`` becomes
``NAME@HASH.safetensors``), this script renames them in ``golden.json`` (found by SHA-256).

Usage: python tools/make_golden.py [--force]

A fixture without its PNG gets one, decoded by the current code on this machine (the
nineteenth session wrote them for the fixtures before it).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import codec
import codec.api
from codec import bitstream, zoo
from codec.cli.roundtrip import sample_image
from codec.entropy import rangecoder
from codec.zoo import WEIGHTS_DIR

EXPECTED = Path(__file__).resolve().parents[1] / "tests" / "expected"
#: Quality of every fixture.
QUALITY = 3.0
#: Crop box (left, top, right, bottom) of codec/data/astronaut.png: the face, 96x64 pixels.
CROP = (208, 72, 304, 136)

#: The range-coder input: three hand-written 16-bit CDF tables (the last symbol of each is
#: the escape) and symbols that fall inside, on the edges of and far outside each table.
CODER_INPUT = {
    "cdfs": [[0, 30000, 50000, 60000, 65536, 0], [0, 1, 2, 65535, 65536, 0], [0, 20000, 40000, 50000, 60000, 65536]],
    "cdf_lengths": [5, 5, 6],
    "offsets": [-1, 0, -2],
    "symbols": [0, -1, 1, 2, 0, 5, -7, 0, 1, 2, 3, 1000, -100000, 2147483647, -2147483648, 0, 1, 2, 0, -2, 2, 0, 1, 1, 1],
    "indexes": [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 0, 2, 1, 2, 2, 0, 0, 1, 2],
}


def crop_image() -> np.ndarray:
    """The fixtures' input image: :data:`CROP` of the bundled sample, RGB uint8."""
    with Image.open(sample_image()) as image:
        return np.asarray(image.convert("RGB").crop(CROP)).copy()


def pixels_sha256(image: Image.Image) -> str:
    """SHA-256 of decoded pixels (mode, size and raw bytes)."""
    return hashlib.sha256(f"{image.mode} {image.size}\n".encode() + image.tobytes()).hexdigest()


def pinned_png(name: str) -> Path:
    """``tests/expected/NAME.png``: the pixels fixture ``NAME`` decodes to."""
    return EXPECTED / f"{Path(name).stem}.png"


def coder_bytes() -> str:
    """Hex of the range coder's output for :data:`CODER_INPUT`."""
    arrays = {k: np.asarray(v, dtype=np.int32) for k, v in CODER_INPUT.items()}
    data = rangecoder.encode(arrays["symbols"], arrays["indexes"], arrays["cdfs"], arrays["cdf_lengths"], arrays["offsets"])
    return data.hex()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rewrite fixtures that exist")
    args = parser.parse_args(argv)
    EXPECTED.mkdir(parents=True, exist_ok=True)
    manifest_path = EXPECTED / "golden.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest["crop"] = {"image": "codec/data/astronaut.png", "box": list(CROP)}
    manifest["coder"] = {"input": CODER_INPUT, "bytes": coder_bytes()}
    files = manifest.setdefault("files", {})
    by_sha256 = {entry.sha256: entry.path.name for entry in zoo.all_versions()}
    for name, entry in files.items():
        if entry.get("weights_sha256") in by_sha256 and by_sha256[entry["weights_sha256"]] != entry["weights"]:
            entry["weights"] = by_sha256[entry["weights_sha256"]]
            print(f"{name}: its weights are now {entry['weights']}")
    image = crop_image()
    for sha256, weights in sorted(by_sha256.items(), key=lambda item: item[1]):
        integer = codec.api.resolve_model(str(WEIGHTS_DIR / weights)).integer_parameters
        stem = f"{zoo.model_name(WEIGHTS_DIR / weights)}-{sha256[:8]}"
        name = f"{stem}_v{bitstream.FORMAT_VERSION}{'_int' if integer else ''}.bin"
        path = EXPECTED / name
        if path.exists() and not args.force:
            print(f"{name}: exists, kept")
            continue
        data = codec.encode(image, model=str(WEIGHTS_DIR / weights), quality=QUALITY)
        path.write_bytes(data)
        decoded = codec.decode(data)
        decoded.save(pinned_png(name), optimize=True)
        files[name] = {"weights": weights, "weights_sha256": sha256, "quality": QUALITY,
                       "version": bitstream.FORMAT_VERSION, "integer_parameters": integer,
                       "file_sha256": hashlib.sha256(data).hexdigest(), "pixels_sha256": pixels_sha256(decoded)}
        print(f"{name}: {len(data)} bytes written")
    for name in files:
        if not pinned_png(name).exists():
            codec.decode((EXPECTED / name).read_bytes()).save(pinned_png(name), optimize=True)
            print(f"{pinned_png(name).name}: pixels pinned")
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
