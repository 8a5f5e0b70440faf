"""codec.latent_codecs: one interface (forward, compress -> named streams + shapes, decompress)
for the entropy bottleneck, the Gaussian conditional and the hyperprior composing them."""
import pytest
import torch

from codec.latent_codecs import HyperpriorLatentCodec
from codec.models.weights import build_model
from codec.training.loss import rd_loss
from conftest import TINY_WALLOC


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = build_model("walloc", TINY_WALLOC).eval()
    net.update(force=True)
    return net


def test_model_composes_a_hyperprior_of_two_named_codecs(model):
    codec = model.latent_codec
    assert isinstance(codec, HyperpriorLatentCodec)
    assert model.stream_names == ("z", "y")
    assert codec.hyper.entropy_bottleneck is model.entropy_bottleneck
    assert codec.latent.gaussian_conditional is model.gaussian_conditional
    assert not any(k.startswith("latent_codec") for k in model.state_dict())  # keys stay the model's


def test_compress_gives_named_streams_and_shapes_that_decompress(model):
    x = torch.rand(2, 3, 64, 96)
    y, z = model.analyse(x, 3.0)
    out = model.latent_codec.compress(y, z)
    assert list(out["strings"]) == ["z", "y"]
    assert all(len(v) == 2 and all(len(s) == 1 for s in v) for v in out["strings"].values())
    assert out["shapes"] == model.latent_shapes(64, 96) == {"z": (8, 2, 3), "y": (8, 8, 12)}
    y_hat = model.latent_codec.decompress(out["strings"], out["shapes"])["y_hat"]
    assert torch.equal(y_hat, out["y_hat"])
    x_hat = model.decompress(out["strings"], out["shapes"], 3.0)["x_hat"]
    assert x_hat.shape == x.shape


def test_each_codec_decompresses_what_it_compressed(model):
    z = torch.randn(2, 8, 3, 5) * 4
    bottleneck = model.latent_codec.hyper
    out = bottleneck.compress(z)
    assert torch.equal(bottleneck.decompress(out["strings"], out["shapes"])["y_hat"], out["y_hat"])
    gaussian = model.latent_codec.latent
    y, scales, means = torch.randn(2, 8, 4, 6) * 5, torch.rand(2, 8, 4, 6) * 3, torch.randn(2, 8, 4, 6)
    out = gaussian.compress(y, scales, means)
    assert torch.equal(gaussian.decompress(out["strings"], out["shapes"], scales, means)["y_hat"], out["y_hat"])


def test_wrong_streams_or_shapes_are_value_errors(model):
    out = model.compress(torch.rand(1, 3, 64, 64), 2.0)
    with pytest.raises(ValueError, match="streams"):
        model.decompress({"y": out["strings"]["y"]}, out["shapes"], 2.0)
    with pytest.raises(ValueError, match="shape"):
        model.decompress(out["strings"], {"z": (8, 2, 2), "y": (8, 9, 8)}, 2.0)
    with pytest.raises(ValueError, match="substream"):
        model.decompress({"z": [[b"", b""]], "y": out["strings"]["y"]}, out["shapes"], 2.0)


def test_training_forward_and_loss(model):
    model.train()
    try:
        x = torch.rand(2, 3, 64, 64)
        out = model(x, torch.tensor([1.0, 4.0]))
        assert list(out["likelihoods"]) == ["y", "z"] and out["x_hat"].shape == x.shape
        loss = rd_loss(model, x, torch.tensor([1.0, 4.0]))
        loss["loss"].backward()
        assert model.h_s[0].weight.grad is not None
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()
