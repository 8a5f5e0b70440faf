"""walloc's optional prior correction (``prior_correction`` > 0, codec/latent_codecs/prior_correction.py):
added to trained weights it changes no byte, a run from those weights (``--init``) may add it,
it moves the coded latents once trained (its width kept by weights that have one:
tests/test_encoder_body.py), the decoder never needs it, and the banded coder
corrects each band as the whole image is corrected."""
import numpy as np
import pytest
import torch
from conftest import TINY_WALLOC

from codec import api
from codec.models.weights import build_model

CORRECTED = dict(TINY_WALLOC, boundary="symmetric", prior_correction=16)


def _with_random_correction(seed: int = 0) -> torch.nn.Module:
    """A tiny walloc whose correction (output convolution included) has random weights."""
    torch.manual_seed(seed)
    net = build_model("walloc", CORRECTED).eval()
    for p in net.prior_correction.parameters():
        p.data.normal_(0, 0.2)
    return net


def _without_correction(net: torch.nn.Module) -> torch.nn.Module:
    """The same tiny walloc, every weight but the correction's."""
    plain = build_model("walloc", dict(CORRECTED, prior_correction=0)).eval()
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("prior_correction.")})
    return plain


def test_a_new_correction_changes_no_byte(tiny_weights):
    """Weights without a correction start a run whose config adds one: the same files at step 0."""
    from codec.training.trainer import read_init_weights

    config = {"architecture": "walloc", "model": dict(TINY_WALLOC, prior_correction=16)}
    state, _, _ = read_init_weights(str(tiny_weights), config)
    net = build_model("walloc", config["model"]).eval()
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert {k.split(".")[0] for k in missing} == {"prior_correction"} and not unexpected
    plain = build_model("walloc", TINY_WALLOC).eval()
    plain.load_state_dict(state)
    net.update(force=True)
    plain.update(force=True)
    x = torch.rand(1, 3, 64, 96)
    assert net.compress(x, 3.0)["strings"] == plain.compress(x, 3.0)["strings"]


@pytest.mark.parametrize("integer", [True, False])
def test_the_decoder_does_not_need_it(integer):
    """The coded latents move (with exact integer or float entropy parameters alike), and the
    model without its correction decodes the file to the same pixels."""
    net = _with_random_correction()
    plain = _without_correction(net)
    net.update(force=True)
    plain.update(force=True)
    x = torch.rand(1, 3, 64, 96)
    out = net.compress(x, 3.0, integer=integer)
    assert out["strings"] != plain.compress(x, 3.0, integer=integer)["strings"]
    torch.testing.assert_close(plain.decompress(out["strings"], out["shapes"], 3.0, integer=integer)["x_hat"],
                               net.decompress(out["strings"], out["shapes"], 3.0, integer=integer)["x_hat"],
                               rtol=0, atol=0)


@pytest.mark.parametrize("rate", ["noise", "rounded", "soft-rounded"])
def test_training_reaches_the_correction_alone(rate):
    """With every other module frozen (the config's recipe), the loss's gradient reaches the correction."""
    net = _with_random_correction().train()
    for name, module in net.named_children():
        if name != "prior_correction":
            module.requires_grad_(False)
    out = net(torch.rand(2, 3, 64, 64), torch.tensor([1.0, 4.0]), rate=rate)
    loss = out["x_hat"].square().mean() + (out["bits"].sum() if rate != "noise" else
                                            sum(-v.log2().sum() for v in out["likelihoods"].values()))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.prior_correction.parameters())


def test_bands_give_the_whole_image_bytes(monkeypatch, tmp_path):
    """Files coded in bands (each band corrected from its own parameters) are those of the whole image."""
    from test_tiles import assert_tiles_give_the_whole_image_bytes

    calls = assert_tiles_give_the_whole_image_bytes(monkeypatch, tmp_path, _with_random_correction(), CORRECTED,
                                                    [(256, 256)])
    assert calls.count("compress_in_bands") == 1


@pytest.mark.parametrize("effort", [0, 1])
def test_the_latents_are_corrected_once(monkeypatch, effort):
    """The analysis corrects; refinement (effort 1) starts from the corrected latents and the
    coder codes what it is given: one call of the correction per encode, and the file decodes."""
    from codec.latent_codecs.prior_correction import PriorCorrection

    net = _with_random_correction()
    net.update(force=True)
    calls = []
    forward = PriorCorrection.forward
    monkeypatch.setattr(PriorCorrection, "forward", lambda self, *a: calls.append(1) or forward(self, *a))
    rgb = np.random.default_rng(1).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    data = api.encode(rgb, model=net, quality=3.0, effort=effort)
    assert len(calls) == 1
    assert np.asarray(api.decode(data, model=net)).shape == rgb.shape


def test_walloc_cc_refuses_it():
    with pytest.raises(ValueError, match="prior_correction"):
        build_model("walloc-cc", dict(CORRECTED, slices=1, slice_kernel=3, checkerboard=True))
