"""Training data: photographs decoded once into memory, served as random crops.

Decoding a JPEG costs far more than cropping it, so every image is decoded once (uint8,
~0.5 MB each at the short side <= 384 of the bundled set; worker processes share them by
fork) and batches are random crops with random flips. A fixed, name-hashed subset is
held out for validation.
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, DistributedSampler, Sampler

from codec.errors import InputError
from codec.fileio import IMAGE_SUFFIXES
from codec.fileio import list_images as images_in


def list_images(folder: str | Path) -> list[Path]:
    """The training images of a folder, sorted; InputError if none or no folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"training data folder not found: {folder}")
    files = images_in(folder)
    if not files:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def refuse_evaluation_images(files: list[Path]) -> None:
    """InputError if any file is a Kodak image (by name or content): Kodak is for reported
    figures only, never for training or model selection."""
    import re

    from codec.evaluation.datasets import KODAK_SHA256
    from codec.fileio import file_sha256

    kodak = set(KODAK_SHA256.values())
    for path in files:
        if re.fullmatch(r"kodim\d\d", path.stem, re.IGNORECASE) or file_sha256(path) in kodak:
            raise InputError(f"{path} is a Kodak evaluation image: Kodak is never used for training or selection")


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


def load_images(files: list[Path], min_side: int, threads: int = 4, progress: bool = True) -> tuple[list[np.ndarray], list[str]]:
    """Decode images to RGB uint8 arrays; returns (images, skipped paths: unreadable or small)."""
    from tqdm import tqdm

    with ThreadPoolExecutor(threads) as pool:
        loaded = list(tqdm(pool.map(lambda p: _load_rgb(p, min_side), files), total=len(files),
                           desc="decoding images", disable=not progress, unit="img"))
    skipped = [str(p) for p, im in zip(files, loaded) if im is None]
    images = [im for im in loaded if im is not None]
    if not images:
        raise InputError(f"none of the {len(files)} images is readable and at least {min_side}px on each side")
    return images, skipped


class CropDataset(Dataset):
    """Random crops with random flips, keyed by ``(image_index, epoch)``.

    The crop position and flips come from a generator seeded by (seed, epoch, image), so a
    sample is the same whichever worker process makes it and however often a run resumes.
    """

    def __init__(self, images: list[np.ndarray], crop: int, seed: int = 0) -> None:
        self.images = images
        self.crop = crop
        self.seed = seed

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        index, epoch = key
        rng = np.random.default_rng([self.seed, epoch, index])
        im, c = self.images[index], self.crop
        top = rng.integers(im.shape[0] - c + 1)
        left = rng.integers(im.shape[1] - c + 1)
        patch = im[top:top + c, left:left + c]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        if rng.random() < 0.5:
            patch = patch[::-1]
        return torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1).float().div_(255.0)


class BatchSchedule(Sampler):
    """Batches of ``(image_index, epoch)`` keys for this rank, from ``start_step`` on.

    Each epoch shuffles the images with :class:`DistributedSampler` (so ranks see disjoint
    images) and cuts this rank's share into full batches; global step ``s`` is batch
    ``s % steps_per_epoch`` of epoch ``s // steps_per_epoch``. Starting at any step makes
    resumption exact without replaying the data.
    """

    def __init__(self, dataset_size: int, batch_size: int, start_step: int = 0, total_steps: int | None = None,
                 rank: int = 0, world_size: int = 1, seed: int = 0) -> None:
        self.dataset_size = dataset_size
        self.batch_size = batch_size
        self.start_step = start_step
        self.total_steps = total_steps
        self.rank, self.world_size, self.seed = rank, world_size, seed
        per_rank = dataset_size // world_size
        self.steps_per_epoch = per_rank // batch_size
        if self.steps_per_epoch == 0:
            raise InputError(f"{dataset_size} training images are too few for batch size {batch_size} "
                             f"on {world_size} process(es)")

    def _epoch_batches(self, epoch: int) -> list[list[tuple[int, int]]]:
        sampler = DistributedSampler(range(self.dataset_size), num_replicas=self.world_size, rank=self.rank,
                                     shuffle=True, seed=self.seed, drop_last=True)
        sampler.set_epoch(epoch)
        indices = list(sampler)
        return [[(i, epoch) for i in indices[k * self.batch_size:(k + 1) * self.batch_size]]
                for k in range(self.steps_per_epoch)]

    def __iter__(self):
        step = self.start_step
        while self.total_steps is None or step < self.total_steps:
            epoch, offset = divmod(step, self.steps_per_epoch)
            for batch in self._epoch_batches(epoch)[offset:]:
                if self.total_steps is not None and step >= self.total_steps:
                    return
                yield batch
                step += 1

    def __len__(self) -> int:
        return max(0, (self.total_steps or 0) - self.start_step)
