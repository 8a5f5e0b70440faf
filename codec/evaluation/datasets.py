"""Image folders to evaluate on: local folders, or named datasets downloaded into a cache.

Named datasets come from their canonical URLs. Downloads stream into a temporary file next
to the destination, are verified (SHA-256 when known; size and zip integrity otherwise) and
only then renamed into place, so an interrupted or failed download leaves no partial file.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from codec.errors import InputError
from codec.fileio import IMAGE_SUFFIXES, atomic_write, file_sha256, list_images

#: File name suffixes treated as images when scanning a folder.
#: Environment variable overriding the default download cache folder.
CACHE_ENV = "CODEC_DATASETS_DIR"
TIMEOUT_S = 60

KODAK_SHA256 = {
    "kodim01.png": "6b4fbe6f3e8e0e20150d5b0c32248bf072e22b5989d415f96f796c5b7004a70f",
    "kodim02.png": "1788370471429d992750a09caf6702ac74e56962447de02520d4b161738c0369",
    "kodim03.png": "b9c800ee568f0b18c983817df08d9f7f24a7ddb3abfdc31bde9234c4fde83137",
    "kodim04.png": "0c60c62599ad33fd78b29c36013fbe4120946f6c327c0ef0ec6983297fb48d23",
    "kodim05.png": "ccf694ceb6bbf431e0009ed0d5573a8ff0915095b69ddfb527b91d8325897f5e",
    "kodim06.png": "f4212cc927d1d579c712843cf8320c7eccb571e5ea80456022ffe99d67e9cd5d",
    "kodim07.png": "7cdd6d63ae0a245f6f9d983d740e11c6808c2efc24f8351aad9b5f676c27b55a",
    "kodim08.png": "5a6a089bdb47605287c00d89ebf2a5312981eb998c94b5853d917c93a9066cdb",
    "kodim09.png": "4d8d801592aeaf446978bbd1c83b76c498242d0f684769311a4e7248289500bf",
    "kodim10.png": "7aca487dc83db732a5690b7affe8558e9dadf5bb44a4589ba2b607480a07228b",
    "kodim11.png": "c7c02bd6e942d1181518e3ce2d97cf0451e4494a5e9d6ddee276940e4875d746",
    "kodim12.png": "df571f5e66d1aefd764ea77855e81e3be61528c34962a0fd1d50557502162c1e",
    "kodim13.png": "797949ce1152ef157ff0a1231c95cb8ed7641615e0b0f5f77f851a44aee19e8d",
    "kodim14.png": "08a1898d5702f32e7d9f94a94651d74a62cb9325475775a558b388c8d98f1846",
    "kodim15.png": "416c475f39b0eb9203ce7f77d2af8824f5bffc1a86a4605865017f04c41639b9",
    "kodim16.png": "5d03303693decdf7a1e1e930b5ca6684283aa80a9e7d8d6a842a74fa5f790640",
    "kodim17.png": "19d90e98e5835efae20a6e17e22e5ac6814ee2c8efb32d188ea4359abaf9f5bd",
    "kodim18.png": "83df267dfec61e9b9d3756c422502160b2fab595650c73a8b12940540ad09ec5",
    "kodim19.png": "86560efe85a13413b228ef7e42dde0d439b25a94fb8e2d6fb1dc1631cf48853b",
    "kodim20.png": "1ae187d92b3a4483b6717f7fd08592846ffdfc340c6424f6756627a27f3d8ea7",
    "kodim21.png": "26e193795108c4b5ec47206ae4ff07a353d2492947f7a7ae8d380e042b74027b",
    "kodim22.png": "627b76fccf714b4ddffb739b2eb63ba2817cf5b5a8e222079542dcf2cfdda939",
    "kodim23.png": "85c67d7ea758cb0604fb6980ab0c65091a2eefa7b3b50cbb1bc702a60206dfe5",
    "kodim24.png": "9f1c26df52217bd49f998a720a2ffeba41a535cf826f4ae32e355fb2b0bbc0fe",
}


@dataclass(frozen=True)
class Dataset:
    """A named dataset: either individual files (name -> (url, sha256)) or one zip archive."""

    name: str
    description: str
    files: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    archive_url: str | None = None
    archive_sha256: str | None = None


DATASETS: dict[str, Dataset] = {
    "kodak": Dataset(
        "kodak", "Kodak PhotoCD, 24 images 768x512 (r0k.us mirror)",
        files={name: (f"http://r0k.us/graphics/kodak/kodak/{name}", sha) for name, sha in KODAK_SHA256.items()},
    ),
    "clic2020-professional-valid": Dataset(
        "clic2020-professional-valid", "CLIC 2020 professional validation set (41 images, zip)",
        archive_url="https://data.vision.ee.ethz.ch/cvl/clic/professional_valid_2020.zip",
    ),
}


def default_cache_dir() -> Path:
    """``$CODEC_DATASETS_DIR`` if set, else ``~/.cache/codec/datasets``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "codec" / "datasets"


def resolve_dataset(spec: str, cache_dir: Path | None = None) -> tuple[str, list[Path]]:
    """(dataset name, image paths) for a folder, a single image file, or a named dataset."""
    path = Path(spec).expanduser()
    if path.is_dir():
        images = list_images(path, recursive_fallback=True)
        if not images:
            raise InputError(f"no images in {path} (looked for {', '.join(IMAGE_SUFFIXES)})")
        return path.resolve().name, images
    if path.is_file():
        return path.stem, [path]
    if spec in DATASETS:
        folder = fetch(DATASETS[spec], cache_dir or default_cache_dir())
        return spec, list_images(folder, recursive_fallback=True)
    raise InputError(f"{spec}: no such folder, and not a named dataset ({', '.join(DATASETS)})")


def _offline_message(dataset: Dataset, url: str, err: object) -> str:
    return (f"cannot download dataset {dataset.name!r} from {url} ({err}); if you are offline, pass a local "
            f"folder of its images instead, e.g. `codec eval path/to/{dataset.name}`")


def download(url: str, dest: Path, sha256: str | None = None, desc: str | None = None) -> Path:
    """Download ``url`` to ``dest`` atomically, with a progress bar and optional SHA-256 check.

    Raises InputError on a checksum or size mismatch, urllib.error.URLError / OSError on network
    errors; in every failure case no file (partial or temporary) is left behind.
    """
    from tqdm import tqdm

    def fetch(tmp: str) -> None:
        digest = hashlib.sha256()
        received = 0
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=desc or dest.name, leave=False) as bar:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            raise InputError(f"{url}: download truncated ({received} of {total} bytes)")
        if sha256 is not None and digest.hexdigest() != sha256:
            raise InputError(f"{url}: SHA-256 mismatch (expected {sha256}, got {digest.hexdigest()}); "
                             f"the file was not kept")

    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(dest, fetch)
    return dest


def fetch(dataset: Dataset, cache_dir: Path) -> Path:
    """Make sure ``dataset`` is complete in ``cache_dir/<name>`` and return that folder."""
    cache_dir = Path(cache_dir).expanduser()
    if cache_dir.exists() and not cache_dir.is_dir():
        raise InputError(f"--cache-dir {cache_dir}: is a file, not a folder")
    folder = cache_dir / dataset.name
    url = url_of(dataset)
    try:
        if dataset.archive_url:
            return _fetch_archive(dataset, folder)
        for name, (url, sha) in dataset.files.items():
            dest = folder / name
            if dest.is_file() and (sha is None or file_sha256(dest) == sha):
                continue
            download(url, dest, sha, desc=f"{dataset.name}/{name}")
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as err:
        with contextlib.suppress(OSError):  # an empty folder left would pass for the dataset next time
            folder.rmdir()
        raise InputError(_offline_message(dataset, url, getattr(err, "reason", err))) from None
    return folder


def url_of(dataset: Dataset) -> str:
    """The dataset's archive URL, or the first file's URL."""
    return dataset.archive_url or next(iter(dataset.files.values()))[0]


def _fetch_archive(dataset: Dataset, folder: Path) -> Path:
    if (folder / ".complete").is_file():
        return folder
    archive = folder.with_name(folder.name + ".zip")
    if not archive.is_file():
        download(dataset.archive_url, archive, dataset.archive_sha256, desc=dataset.name)  # type: ignore[arg-type]
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise InputError(f"{archive}: corrupt member {bad}; delete the file and retry")
            tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
            try:
                zf.extractall(tmp)
                (tmp / ".complete").write_text("ok\n")
                if folder.exists():
                    shutil.rmtree(folder)
                os.replace(tmp, folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except zipfile.BadZipFile as err:
        archive.unlink(missing_ok=True)
        raise InputError(f"{archive}: not a valid zip ({err}); it was deleted, run again to re-download") from None
    return folder
