"""codec.latent_codecs.integer_parameters: exact table indexes and means, the same on every machine."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import codec
from codec import api, bitstream, zoo
from codec.cli.roundtrip import sample_image
from codec.entropy.compressai_models import scale_indexes
from codec.models.weights import load_weights
from codec.latent_codecs.integer_parameters import (
    ACTIVATION_BITS,
    MAX_BOUND,
    IntegerLayer,
    _conv_exact,
    derive_integer_parameters,
)


@pytest.fixture(scope="module")
def walloc():
    return zoo.load_model(zoo.entry_for("walloc"))


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    """A real photograph: a 256x192 crop of the bundled sample, [1, 3, H, W] in [0, 1]."""
    with Image.open(sample_image()) as im:
        rgb = np.asarray(im.convert("RGB").crop((128, 32, 384, 224))).copy()
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope="module")
def symbols(walloc, image):
    """The int32 symbols of the image's hyper-latents at a mid quality."""
    with torch.inference_mode():
        _, z = walloc.analyse(image, 3.0)
        return walloc.entropy_bottleneck.quantize(z, "symbols", walloc.entropy_bottleneck._get_medians()).int()


def _parameters(net, symbols):
    return derive_integer_parameters(net.h_s, net.entropy_bottleneck, net.gaussian_conditional)(symbols)


def test_every_partial_sum_of_the_shipped_network_stays_below_2_to_the_53(walloc):
    network = derive_integer_parameters(walloc.h_s, walloc.entropy_bottleneck, walloc.gaussian_conditional).network
    assert [layer.weight_bits for layer in network.layers] == [20, 20, 19]
    assert all(bound <= MAX_BOUND for bound in network.bounds)
    for layer in network.layers:  # recompute each bound from the integer weights and the activation limit
        sums = layer.weight.abs().sum(dim=(0, 2, 3) if layer.transposed else (1, 2, 3))
        assert int((sums * network.limit + layer.bias.abs().double()).max()) == layer.bound < 2**53


@pytest.mark.parametrize("transposed", [False, True])
def test_exact_convolution_is_the_convolution(transposed):
    """On small integers (where float64 convolutions are exact too) it is torch's convolution."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(-50, 50, (2, 3, 5, 7), generator=g)
    shape = (3, 4, 5, 5) if transposed else (4, 3, 3, 3)
    weight = torch.randint(-20, 20, shape, generator=g).double()
    bias = torch.randint(-100, 100, (4,), generator=g)
    stride, padding, output_padding = (2, 2, 1) if transposed else (1, 1, 0)
    layer = IntegerLayer(weight, bias, 0, transposed, stride, padding, output_padding, None, 0)
    if transposed:
        expected = F.conv_transpose2d(x.double(), weight, bias.double(), stride, padding, output_padding)
    else:
        expected = F.conv2d(x.double(), weight, bias.double(), stride, padding)
    assert torch.equal(_conv_exact(x, layer), expected.long())


def test_integer_network_is_close_to_the_float_one(walloc, symbols):
    indexes, means = _parameters(walloc, symbols)
    with torch.inference_mode():
        z_hat = symbols + walloc.entropy_bottleneck._get_medians()
        scales, float_means = walloc._hyper_parameters(z_hat)
        float_indexes = scale_indexes(walloc.gaussian_conditional, scales)
    assert (means - float_means).abs().max() < 1e-3  # measured: 2.6e-4 on Kodak
    assert (indexes != float_indexes).float().mean() < 1e-3  # latents whose scale is on a table edge
    assert ((indexes - float_indexes).abs() <= 1).all()
    assert torch.equal(means * 2**ACTIVATION_BITS, torch.round(means * 2**ACTIVATION_BITS))  # dyadic


def test_parameters_are_the_same_whatever_threads_precision_and_layout(walloc, symbols):
    reference = _parameters(walloc, symbols)
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            assert all(torch.equal(a, b) for a, b in zip(_parameters(walloc, symbols), reference))
    finally:
        torch.set_num_threads(before)
    double = load_weights(zoo.entry_for("walloc").path).double()  # not zoo.load_model: it is cached
    assert all(torch.equal(a, b) for a, b in zip(_parameters(double, symbols), reference))
    channels_last = load_weights(zoo.entry_for("walloc").path).to(memory_format=torch.channels_last)
    out = _parameters(channels_last, symbols.contiguous(memory_format=torch.channels_last))
    assert all(torch.equal(a, b) for a, b in zip(out, reference))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_parameters_are_the_same_on_cuda_and_cpu(walloc, symbols):
    reference = _parameters(walloc, symbols)
    gpu = load_weights(zoo.entry_for("walloc").path, device="cuda")
    out = _parameters(gpu, symbols.cuda())
    assert all(torch.equal(a.cpu(), b) for a, b in zip(out, reference))


def test_integer_files_decode_and_say_so(walloc, image):
    data = api.encode_tensor(image, walloc, quality=2.5)[0]
    header, _ = bitstream.unpack(data)
    assert header.integer_parameters and walloc.integer_parameters
    float_data = api.encode_tensor(image, walloc, quality=2.5, integer_parameters=False)[0]
    assert not bitstream.unpack(float_data)[0].integer_parameters
    a, b = api.decode_to_tensor([data, float_data])
    assert (a - b).abs().max() <= 2 / 255  # the same latents up to the rare edge case
    assert np.array_equal(np.asarray(codec.decode(data)), (a * 255).round().byte().permute(1, 2, 0).numpy())
    psnr = -10 * math.log10(float(((a - image[0]) ** 2).mean()))
    assert psnr > 25


def test_a_version_1_file_cannot_claim_integer_parameters():
    header = bitstream.Header("walloc", b"\0" * 8, 3.0, 64, 64, flags=bitstream.FLAG_INTEGER_PARAMETERS, version=1)
    with pytest.raises(ValueError, match="version 2"):
        bitstream.validate_header(header)


def test_a_network_without_integer_form_is_refused():
    from codec.latent_codecs.integer_parameters import IntegerNetwork

    with pytest.raises(ValueError, match="no integer form"):
        IntegerNetwork(torch.nn.Sequential(torch.nn.Conv2d(2, 2, 3), torch.nn.ReLU(), torch.nn.Conv2d(2, 2, 3)))
    with pytest.raises(ValueError, match="no integer form"):
        IntegerNetwork(torch.nn.Sequential(torch.nn.LeakyReLU(), torch.nn.Conv2d(2, 2, 3)))
    with pytest.raises(ValueError, match="no integer form"):
        IntegerNetwork(torch.nn.Sequential(torch.nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect")))
    with pytest.raises(ValueError, match="end with a convolution"):
        IntegerNetwork(torch.nn.Sequential(torch.nn.Conv2d(2, 2, 3), torch.nn.LeakyReLU()))


@pytest.mark.parametrize("band_rows", [1, 3, 7])
def test_parameters_in_bands_are_the_whole_image_ones(walloc, band_rows, monkeypatch):
    """Bands of z rows (with the halo) give the same indexes and means, bit for bit."""
    from codec.latent_codecs.integer_parameters import IntegerGaussianParameters

    params = derive_integer_parameters(walloc.h_s, walloc.entropy_bottleneck, walloc.gaussian_conditional)
    z = torch.randint(-6, 7, (2, walloc.h_s[0].in_channels, 37, 23), generator=torch.Generator().manual_seed(band_rows),
                      dtype=torch.int32)
    whole = params._parameters(z)
    monkeypatch.setattr(IntegerGaussianParameters, "BAND_OUTPUTS", 16 * 23 * band_rows)
    banded = params(z)
    assert all(torch.equal(a, b) for a, b in zip(banded, whole))


@pytest.mark.parametrize("start,stop,outputs", [(0, 20, 4096), (13, 51, 4096), (40, 148, 100000)])
def test_rows_in_column_chunks_are_the_whole_image_ones(walloc, start, stop, outputs, monkeypatch):
    """Rows of y computed from their z rows in chunks of columns (few outputs per chunk) are
    the whole image's rows, bit for bit."""
    from codec.latent_codecs.integer_parameters import IntegerGaussianParameters

    params = derive_integer_parameters(walloc.h_s, walloc.entropy_bottleneck, walloc.gaussian_conditional)
    z = torch.randint(-6, 7, (1, walloc.h_s[0].in_channels, 37, 23), generator=torch.Generator().manual_seed(start),
                      dtype=torch.int32)
    whole = params._parameters(z)
    monkeypatch.setattr(IntegerGaussianParameters, "BAND_OUTPUTS", outputs)
    rows = params.rows(z, start, stop)
    assert all(torch.equal(a, b[..., start:stop, :]) for a, b in zip(rows, whole))
