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


def code_in_small_bands(monkeypatch, latent_codec: type) -> list[str]:
    """Make walloc code images of a few hundred pixels in bands (8 latent rows, parameters in
    bands of 4), with ``y`` substreams of about 64 values, so that substreams run across
    bands and across channels; returns the list that records each call of ``latent_codec``'s
    ``compress_in_bands`` / ``decompress_in_bands``."""
    import functools

    from codec.entropy import substreams
    from codec.latent_codecs import gaussian_conditional
    from codec.models.walloc import WaLLoC

    monkeypatch.setattr(gaussian_conditional, "latent_bounds",
                        functools.partial(substreams.latent_bounds, target_symbols=64))
    monkeypatch.setattr(WaLLoC, "BAND_ROWS", 8)
    monkeypatch.setattr(WaLLoC, "WHOLE_IMAGE_ROWS", 0)
    monkeypatch.setattr(WaLLoC, "CODING_ROWS", 4)
    calls: list[str] = []
    for name in ("compress_in_bands", "decompress_in_bands"):
        method = getattr(latent_codec, name)
        monkeypatch.setattr(latent_codec, name, lambda self, *a, _m=method, _n=name: calls.append(_n) or _m(self, *a))
    return calls


@pytest.fixture
def banded_coding(monkeypatch, tmp_path):
    """A symmetric tiny walloc with integer parameters whose files of a few hundred pixels
    are coded in bands (:func:`code_in_small_bands`): its weights path and the calls list."""
    import torch

    from codec.latent_codecs.hyperprior import HyperpriorLatentCodec
    from codec.models.weights import build_model, save_weights

    torch.manual_seed(0)
    config = dict(TINY_WALLOC, boundary="symmetric")
    path = tmp_path / "tiny-sym.safetensors"
    save_weights(build_model("walloc", config).eval(), path, architecture="walloc", config=config)
    return str(path), code_in_small_bands(monkeypatch, HyperpriorLatentCodec)
