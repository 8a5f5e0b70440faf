"""Shared fixtures: a tiny untrained model saved as a weights file (fast, no shipped weights needed)."""
import pytest

TINY_WALLOC = {"latent_channels": 8, "levels": 3, "wavelet": "bior4.4", "decoder_channels": 16,
               "decoder_blocks": 1, "hyper_channels": 16, "z_channels": 8}


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """Path of an untrained, small walloc weights file."""
    import torch

    from codec.models.weights import build_model, save_weights

    torch.manual_seed(0)
    model = build_model("walloc", TINY_WALLOC)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_weights(model, path, architecture="walloc", config=TINY_WALLOC)
    return path
