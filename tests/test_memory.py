"""Bounded memory: a subprocess encodes and decodes a generated ~40 MP image under a data-size
limit (``RLIMIT_DATA``) of 3 x its 8-bit size plus a fixed allowance above what the process
holds before the image exists. The path before coding in bands held the float image (4 x the
8-bit size) and its padded copy, over twice that limit; a tiny symmetric walloc keeps the run
short (its transforms are those of the shipped model, narrower)."""
import subprocess
import sys

import pytest
from conftest import TINY_WALLOC

CHILD = r"""
import resource, sys
import numpy as np
import codec

def data_size():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmData:"))

weights, width, height, allowance = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
codec.decode(codec.encode(np.zeros((40, 40, 3), np.uint8), model=weights), model=weights)  # model, tables, threads
limit = data_size() + 3 * width * height * 3 + allowance
old_path_needs = 3 * width * height * 3 * 4  # the float image, its padded copy, its wavelet coefficients
assert old_path_needs > limit - data_size(), "the limit would not have stopped the old path"
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
image = np.empty((height, width, 3), np.uint8)
ramp = (np.arange(width) % 251).astype(np.uint8)
for top in range(0, height, 256):
    rows = np.arange(top, min(height, top + 256))
    image[top:top + 256] = (ramp[None, :, None] + (rows % 241).astype(np.uint8)[:, None, None]
                            * np.array([1, 2, 3], np.uint8))
checksum = int(image[::97, ::89].astype(np.int64).sum())
data = codec.encode(image, model=weights, quality=3)
del image
decoded = np.asarray(codec.decode(data, model=weights))
assert decoded.shape == (height, width, 3)
print(len(data), checksum, int(decoded[::97, ::89].astype(np.int64).sum()))
"""


@pytest.fixture(scope="module")
def symmetric_weights(tmp_path_factory):
    import torch

    from codec.models.weights import build_model, save_weights

    torch.manual_seed(0)
    config = dict(TINY_WALLOC, boundary="symmetric")
    path = tmp_path_factory.mktemp("weights") / "tiny-symmetric.safetensors"
    save_weights(build_model("walloc", config), path, architecture="walloc", config=config)
    return path


def test_a_40_megapixel_image_codes_under_a_memory_limit(symmetric_weights):
    width, height, allowance = 7777, 5151, 900 << 20  # not multiples of the stride: padded
    run = subprocess.run([sys.executable, "-c", CHILD, str(symmetric_weights), str(width), str(height), str(allowance)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    size, before, after = (int(v) for v in run.stdout.split())
    assert size > 0 and abs(after - before) < 0.05 * before  # the decoded image is the image
