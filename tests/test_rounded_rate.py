"""Training on the rate of the rounded latents (``"rate": "rounded"``): the loss counts the
bits of the latents the coder writes, centred as it centres them, with straight-through
gradients, and the synthesis sees the same input as with the noisy rate."""

import pytest
import torch
from conftest import TINY_WALLOC
from test_walloc_cc import TINY_CB

from codec.latent_codecs.base import straight_through_round
from codec.models.weights import build_model
from codec.training.loss import rd_loss


def test_straight_through_round_rounds_with_the_identity_gradient():
    values = torch.tensor([-1.6, -0.4, 0.49, 0.51, 2.5], requires_grad=True)
    rounded = straight_through_round(values)
    assert torch.equal(rounded, torch.round(values.detach()))
    (rounded * torch.arange(5.0)).sum().backward()
    assert torch.equal(values.grad, torch.arange(5.0))


@pytest.mark.parametrize("architecture, config", [("walloc", TINY_WALLOC),
                                                  ("walloc-cc", TINY_CB),
                                                  ("walloc", dict(TINY_WALLOC, reconstruction_offsets=True))])
def test_rounded_rate_counts_the_coders_bits(architecture, config):
    """In training mode, the bits are those of the latents rounded about the coder's centres
    (``relaxed`` with true rounding): the rate and the pixels of the evaluation-mode pass,
    whose entropy models round instead of adding noise; the rate's gradient reaches the
    entropy model."""
    torch.manual_seed(0)
    model = build_model(architecture, config).train()
    if model.reconstruction is not None:
        with torch.no_grad():
            model.reconstruction.offsets.uniform_(-0.3, 0.1)
    x = torch.rand(2, 3, 64, 64)
    quality = torch.tensor([1.0, 4.5])
    out = model(x, quality, rate="rounded")
    with torch.no_grad():
        y = model.g_a(x).float() * model.gains.gain(quality)
        latents = model.build_latent_codec(integer=False)
        expected = latents.relaxed(y, latents.hyper_latents(y), torch.round)["bits"]
        rounding = model.eval()(x, quality)
    model.train()
    assert torch.allclose(out["bits"], expected, rtol=1e-5)
    evaluation_bits = sum(-l.log2().flatten(1).sum(1) for l in rounding["likelihoods"].values())
    assert torch.allclose(out["bits"], evaluation_bits, rtol=1e-4)
    assert torch.allclose(out["x_hat"], rounding["x_hat"], atol=1e-6)
    assert "likelihoods" not in out and out["bits"].shape == (2,)
    out["bits"].sum().backward()
    moved = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert {"h_a", "h_s", "entropy_bottleneck"} <= moved


def test_rd_loss_takes_either_rate():
    """In training the two rates differ (noise against rounding); a bad name is refused."""
    torch.manual_seed(0)
    model = build_model("walloc", TINY_WALLOC).train()
    x = torch.rand(2, 3, 64, 64)
    quality = torch.tensor([2.0, 3.0])
    rounded = rd_loss(model, x, quality, rate="rounded")
    noisy = rd_loss(model, x, quality)
    assert rounded["bpp"] > 0 and not torch.allclose(rounded["bpp"], noisy["bpp"])
    with pytest.raises(ValueError, match="rate must be"):
        model(x, quality, rate="hard")
