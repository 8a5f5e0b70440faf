"""Training data: photographs decoded once into memory, served as random crops.

Decoding a JPEG costs far more than cropping it, so every image is decoded once (uint8,
~0.5 MB each at the short side <= 384 of the bundled set) and batches are random crops
with random flips. A fixed, name-hashed subset is held out for validation.
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from codec.errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm"}


def list_images(folder: str | Path) -> list[Path]:
    """Image files of a folder (by extension), sorted; InputError if none or no folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"training data folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return files


def split_holdout(files: list[Path], holdout: int) -> tuple[list[Path], list[Path]]:
    """Deterministic train/validation split by a hash of the file name."""
    ranked = sorted(files, key=lambda p: hashlib.sha256(p.name.encode()).hexdigest())
    return sorted(ranked[holdout:]), sorted(ranked[:holdout])


def _load_rgb(path: Path, min_side: int) -> np.ndarray | None:
    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
    except (OSError, ValueError):
        return None
    return rgb if min(rgb.shape[:2]) >= min_side else None


class CropSampler:
    """Random ``crop`` x ``crop`` RGB crops (float32 in [0, 1]) from images held in memory."""

    def __init__(self, files: list[Path], crop: int, threads: int = 4, progress: bool = True) -> None:
        from tqdm import tqdm

        self.crop = crop
        with ThreadPoolExecutor(threads) as pool:
            loaded = list(tqdm(pool.map(lambda p: _load_rgb(p, crop), files), total=len(files),
                               desc="decoding images", disable=not progress, unit="img"))
        self.images = [im for im in loaded if im is not None]
        self.skipped = [str(p) for p, im in zip(files, loaded) if im is None]
        if not self.images:
            raise InputError(f"none of the {len(files)} images is readable and at least {crop}px on each side")

    def batch(self, size: int, rng: np.random.Generator) -> torch.Tensor:
        """A batch [size, 3, crop, crop] of random crops with random horizontal/vertical flips."""
        c = self.crop
        out = np.empty((size, c, c, 3), dtype=np.uint8)
        for i in range(size):
            im = self.images[rng.integers(len(self.images))]
            top = rng.integers(im.shape[0] - c + 1)
            left = rng.integers(im.shape[1] - c + 1)
            patch = im[top:top + c, left:left + c]
            if rng.random() < 0.5:
                patch = patch[:, ::-1]
            if rng.random() < 0.5:
                patch = patch[::-1]
            out[i] = patch
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)
