"""codec.entropy.compressai_models: our fast scale indexes equal compressai's, latents round-trip;
our models' update / load_state_dict / aux_loss equal compressai's CompressionModel's."""
import copy

import pytest
import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.models import CompressionModel
from compressai.models.google import get_scale_table
from compressai.models.utils import conv as compressai_conv
from compressai.models.utils import deconv as compressai_deconv

from codec.entropy.compressai_models import decode_bottleneck, decode_gaussian, encode_bottleneck, encode_gaussian, scale_indexes
from codec.models import hyperprior
from codec.models.base import scale_table
from codec.models.weights import build_model
from conftest import TINY_WALLOC


def _gaussian():
    g = GaussianConditional(None)
    g.update_scale_table(get_scale_table())
    g.update()
    return g


def test_scale_indexes_equal_compressai_including_table_boundaries():
    g = _gaussian()
    table = g.scale_table
    scales = torch.cat([torch.rand(20000) * 30, torch.exp(torch.randn(20000) * 2), table,
                        table.nextafter(torch.tensor(0.0)), table.nextafter(torch.tensor(1e9)),
                        torch.tensor([0.0, -1.0, 1e9, float("inf")])])
    assert torch.equal(scale_indexes(g, scales), g.build_indexes(scales))


def test_latents_round_trip_like_compressai():
    torch.manual_seed(0)
    g = _gaussian()
    scales = torch.exp(torch.randn(2, 4, 8, 8))
    means = torch.randn(2, 4, 8, 8)
    y = means + scales * torch.randn(2, 4, 8, 8) * 3
    y_hat = decode_gaussian(g, encode_gaussian(g, y, scales, means), scales, means)
    assert torch.equal(y_hat, g.decompress(g.compress(y, g.build_indexes(scales), means), g.build_indexes(scales), means=means))
    eb = EntropyBottleneck(4)
    eb.update(force=True)
    z = torch.randn(2, 4, 5, 3) * 4
    z_hat = decode_bottleneck(eb, encode_bottleneck(eb, z), (5, 3))
    assert torch.equal(z_hat, eb.decompress(eb.compress(z), (5, 3)))


def test_scale_table_and_layers_equal_compressai():
    assert torch.equal(scale_table(), get_scale_table())
    assert repr(hyperprior.conv(3, 8)) == repr(compressai_conv(3, 8))
    assert repr(hyperprior.deconv(8, 3, 3, 1)) == repr(compressai_deconv(8, 3, 3, 1))


@pytest.mark.parametrize("architecture, config", [("walloc", TINY_WALLOC), ("hyperprior", {"channels": 8, "latent_channels": 12})])
def test_model_helpers_equal_compressai_compression_model(architecture, config):
    torch.manual_seed(0)
    ours = build_model(architecture, config)
    theirs = copy.deepcopy(ours)
    assert ours.update(force=True) == CompressionModel.update(theirs, force=True) is True
    assert ours.update() == CompressionModel.update(theirs) is False
    state = ours.state_dict()
    assert state.keys() == theirs.state_dict().keys()
    assert all(torch.equal(v, theirs.state_dict()[k]) for k, v in state.items())
    assert torch.equal(ours.aux_loss(), CompressionModel.aux_loss(theirs))
    loaded, reference = build_model(architecture, config), build_model(architecture, config)
    loaded.load_state_dict(state)
    CompressionModel.load_state_dict(reference, state)
    assert all(torch.equal(v, reference.state_dict()[k]) and torch.equal(v, state[k]) for k, v in loaded.state_dict().items())
