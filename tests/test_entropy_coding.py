"""codec.entropy.compressai_models: our fast scale indexes equal compressai's, latents round-trip."""
import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.models.google import get_scale_table

from codec.entropy.compressai_models import decode_bottleneck, decode_gaussian, encode_bottleneck, encode_gaussian, scale_indexes


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
