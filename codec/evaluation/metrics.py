"""Image quality metrics on 8-bit RGB arrays: bpp, PSNR-RGB and MS-SSIM."""
from __future__ import annotations

import math

import numpy as np

#: MS-SSIM with 5 scales and an 11-pixel window needs a smaller side above (11 - 1) * 2**4.
MS_SSIM_MIN_SIDE = 161


def bpp(num_bytes: int, width: int, height: int) -> float:
    """Bits per pixel of a file of ``num_bytes`` bytes (header included) for a ``width``x``height`` image."""
    return num_bytes * 8.0 / (width * height)


def mse(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean squared error over every RGB value of two HxWx3 uint8 arrays."""
    if reference.shape != test.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {test.shape}")
    diff = reference.astype(np.float64) - test.astype(np.float64)
    return float(np.mean(diff * diff))


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR-RGB in dB (peak 255) from the MSE over all RGB values; ``inf`` for identical images."""
    error = mse(reference, test)
    return math.inf if error == 0 else 10.0 * math.log10(255.0**2 / error)


def ms_ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """MS-SSIM (pytorch-msssim, 5 scales, float32, data_range 255); NaN when a side is below 161 pixels."""
    if min(reference.shape[:2]) < MS_SSIM_MIN_SIDE:
        return math.nan
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit deprecation warning raised by pytorch_msssim's import
        from pytorch_msssim import ms_ssim as _ms_ssim

    def to_tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(a, dtype=np.float32)).permute(2, 0, 1)[None]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: one thread is faster than several on a busy machine
    try:
        with torch.inference_mode():
            return float(_ms_ssim(to_tensor(reference), to_tensor(test), data_range=255, size_average=True))
    finally:
        torch.set_num_threads(threads)


def ms_ssim_db(value: float) -> float:
    """MS-SSIM expressed in dB, ``-10 log10(1 - value)`` (as in CompressAI's plots)."""
    if value is None or math.isnan(value):
        return math.nan
    return math.inf if value >= 1 else -10.0 * math.log10(1.0 - value)
