"""Make a large test image by tiling photographs: ``python tools/make_large_image.py FOLDER OUT.png WIDTHxHEIGHT``.

The photos of FOLDER (sorted by name, every image Pillow reads) are resized with Lanczos to
tiles of ``--tile`` pixels (default 1200x800) and laid out row by row until the image is
full; the last row and column of tiles are cropped. Used to measure ``codec`` on 6 to 100 MP
images (docs/large-images.md); nothing it writes belongs in the repository.
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from PIL import Image

from codec.fileio import list_images


def size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` as two positive ints."""
    width, _, height = text.lower().partition("x")
    value = int(width), int(height)
    if min(value) < 1:
        raise argparse.ArgumentTypeError(f"need WIDTHxHEIGHT, got {text!r}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("size", type=size, help="WIDTHxHEIGHT of the output")
    parser.add_argument("--tile", type=size, default=(1200, 800), help="size of one photo in it (default 1200x800)")
    args = parser.parse_args()
    (width, height), (tile_w, tile_h) = args.size, args.tile
    photos = list_images(args.folder)
    if not photos:
        parser.error(f"no images in {args.folder}")
    Image.MAX_IMAGE_PIXELS = None
    canvas = Image.new("RGB", (width, height))
    sources = itertools.cycle(photos)
    for top in range(0, height, tile_h):
        for left in range(0, width, tile_w):
            with Image.open(next(sources)) as photo:
                canvas.paste(photo.convert("RGB").resize((tile_w, tile_h), Image.LANCZOS), (left, top))
    canvas.save(args.output, compress_level=1)


if __name__ == "__main__":
    from codec.cli._common import run_tool

    raise SystemExit(run_tool(main, "make_large_image"))
