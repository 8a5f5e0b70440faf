"""Wavelet packet transform: PyWavelets agreement, perfect reconstruction, gradients."""
import numpy as np
import pytest
import torch

from codec.transforms import WAVELETS, WaveletPacket2D

pywt = pytest.importorskip("pywt")


@pytest.mark.parametrize("wavelet", WAVELETS)
def test_one_level_matches_pywavelets(wavelet):
    x = torch.randn(2, 3, 16, 24, dtype=torch.float64)
    ours = WaveletPacket2D(wavelet, 1).analysis(x).numpy().reshape(2, 3, 4, 8, 12)
    ca, (ch, cv, cd) = pywt.dwt2(x.numpy(), wavelet, mode="periodization")
    np.testing.assert_allclose(ours, np.stack([ca, ch, cv, cd], axis=2), atol=1e-6)


@pytest.mark.parametrize("wavelet", WAVELETS)
def test_filters_match_pywavelets(wavelet):
    from codec.transforms.wavelets import _FILTERS

    ref = pywt.Wavelet(wavelet)
    for ours, theirs in zip(_FILTERS[wavelet], (ref.dec_lo, ref.dec_hi, ref.rec_lo, ref.rec_hi)):
        np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_packet_levels_match_pywavelets_packets():
    x = np.random.default_rng(0).standard_normal((32, 32))
    ours = WaveletPacket2D("bior4.4", 2).analysis(torch.from_numpy(x)[None, None]).numpy()[0]
    packet = pywt.WaveletPacket2D(x, "bior4.4", mode="periodization", maxlevel=2)
    order = "ahvd"  # pywt node names in our channel order
    for i, a in enumerate(order):
        for j, b in enumerate(order):
            np.testing.assert_allclose(ours[4 * i + j], packet[a + b].data, atol=1e-6)


@pytest.mark.parametrize("wavelet", WAVELETS)
@pytest.mark.parametrize("levels", [1, 2, 3])
def test_perfect_reconstruction_float32(wavelet, levels):
    transform = WaveletPacket2D(wavelet, levels)
    x = torch.rand(2, 3, 8 * 2**levels, 4 * 2**levels)
    y = transform.analysis(x)
    assert y.shape == (2, 3 * 4**levels, 8, 4)
    assert (transform.synthesis(y) - x).abs().max().item() < 1e-4


def test_shapes_and_errors():
    transform = WaveletPacket2D("bior4.4", 3)
    assert transform.factor == 8
    with pytest.raises(ValueError, match="multiples of 8"):
        transform.analysis(torch.zeros(1, 3, 12, 16))
    with pytest.raises(ValueError, match="4-D"):
        transform.analysis(torch.zeros(3, 16, 16))
    with pytest.raises(ValueError, match="wavelet"):
        WaveletPacket2D("db2")


def test_gradients_flow():
    transform = WaveletPacket2D("bior4.4", 2)
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    transform.synthesis(transform.analysis(x) * 2).sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, 2.0), atol=1e-4)



def _mirrored(x: torch.Tensor, dim: int) -> torch.Tensor:
    """x followed by its mirror image without the end samples: one period (2N - 2) of the
    whole-sample symmetric extension along ``dim``."""
    inner = x.narrow(dim, 1, x.shape[dim] - 2).flip(dim)
    return torch.cat([x, inner], dim=dim)


def test_symmetric_boundary_is_the_periodic_transform_of_the_mirrored_image():
    """One level under the symmetric rule equals the periodic transform of the image mirrored
    about its last row and column (a signal of period 2N - 2), on the image's own samples."""
    x = torch.randn(2, 3, 16, 24, dtype=torch.float64)
    symmetric = WaveletPacket2D("bior4.4", 1, "symmetric").double().analysis(x)
    periodic = WaveletPacket2D("bior4.4", 1).double().analysis(_mirrored(_mirrored(x, 2), 3))
    torch.testing.assert_close(symmetric, periodic[..., :8, :12], rtol=0, atol=1e-12)


@pytest.mark.parametrize("levels", [1, 2, 3])
@pytest.mark.parametrize("size", [(8, 8), (16, 40), (72, 24)])
def test_symmetric_boundary_reconstructs_exactly(levels, size):
    wpt = WaveletPacket2D("bior4.4", levels, "symmetric").double()
    x = torch.randn(1, 3, *size, dtype=torch.float64)
    # Exact up to the float32 rounding of the filter taps, as with periodic borders.
    torch.testing.assert_close(wpt.synthesis(wpt.analysis(x)), x, rtol=0, atol=2e-6)


def test_symmetric_boundary_is_local_and_leaves_interior_coefficients_alone():
    x = torch.randn(1, 3, 64, 48, dtype=torch.float64)
    symmetric = WaveletPacket2D("bior4.4", 3, "symmetric").double()
    whole = symmetric.analysis(x)
    # Periodic and symmetric borders agree away from the borders...
    periodic = WaveletPacket2D("bior4.4", 3).double().analysis(x)
    torch.testing.assert_close(whole[..., 3:-3, 3:-3], periodic[..., 3:-3, 3:-3], rtol=0, atol=1e-9)
    # ...and the top 40 rows alone give the top coefficients of the whole image: no wrap-around.
    top = symmetric.analysis(x[..., :40, :])
    torch.testing.assert_close(top[..., :2, :], whole[..., :2, :], rtol=0, atol=1e-12)
    # Under periodic borders the bottom of the image reaches the top coefficients.
    wrapped = WaveletPacket2D("bior4.4", 3).double().analysis(x[..., :40, :])
    assert (wrapped[..., :1, :] - periodic[..., :1, :]).abs().max() > 1e-3


def test_symmetric_boundary_needs_symmetric_filters():
    with pytest.raises(ValueError, match="bior4.4"):
        WaveletPacket2D("haar", 1, "symmetric")
    with pytest.raises(ValueError, match="boundary"):
        WaveletPacket2D("bior4.4", 1, "zero")


@pytest.mark.parametrize("boundary", ["periodic", "symmetric"])
@pytest.mark.parametrize("levels", [1, 2, 3])
def test_transforms_without_gradients_are_bit_identical_to_the_level_by_level_ones(boundary, levels):
    """Without gradients, analysis and synthesis run one channel's packet tree at a time (less
    memory): the same floats, bit for bit, as all channels a level at a time."""
    torch.manual_seed(levels)
    wpt = WaveletPacket2D("bior4.4", levels, boundary)
    x = torch.rand(2, 3, 16 * wpt.factor, 9 * wpt.factor) - 0.5
    y = torch.randn(2, 3 * 4**levels, 16, 9)
    reference_a, reference_s = x, y
    for _ in range(levels):
        reference_a, reference_s = wpt._analysis_level(reference_a), wpt._synthesis_level(reference_s)
    with torch.no_grad():
        assert torch.equal(wpt.analysis(x), reference_a)
        assert torch.equal(wpt.synthesis(y), reference_s)
    with torch.inference_mode():
        assert torch.equal(wpt.analysis(x), reference_a)
