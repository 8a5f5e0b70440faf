"""walloc's banded synthesis: tall images decoded band by band agree with the whole-image
computation (to float rounding), under both wavelet border rules, whatever the band cuts."""
import pytest
import torch
from conftest import TINY_WALLOC

from codec.models.weights import build_model


@pytest.fixture(params=["periodic", "symmetric"])
def model(request, monkeypatch):
    torch.manual_seed(0)
    net = build_model("walloc", dict(TINY_WALLOC, boundary=request.param)).eval()
    for p in net.decoder.parameters():  # an untrained decoder's residual path is tiny; make it count
        p.data.normal_(0, 0.3)
    return net


@pytest.mark.parametrize("band", [8, 13, 21])
@pytest.mark.parametrize("shape", [(61, 17), (64, 40), (97, 9)])
def test_bands_agree_with_the_whole_image(model, monkeypatch, band, shape):
    y = torch.randn(2, TINY_WALLOC["latent_channels"], *shape) * 4
    with torch.inference_mode():
        whole = model._synthesise(y)
        monkeypatch.setattr(type(model), "BAND_ROWS", band)
        monkeypatch.setattr(type(model), "WHOLE_IMAGE_ROWS", 0)
        banded = model.g_s(y)
    assert banded.shape == whole.shape
    torch.testing.assert_close(banded, whole, rtol=0, atol=1e-5)


def test_the_halo_is_needed_and_enough(model, monkeypatch):
    """One latent row less of either halo changes the result: the halo is the exact reach."""
    y = torch.randn(1, TINY_WALLOC["latent_channels"], 64, 24) * 4
    decoder, wavelet = model.synthesis_halo
    assert (decoder, wavelet) == (3, 4)  # 1 + 2 x 1 residual block; 2 + 1 + 0.5 rounded up
    monkeypatch.setattr(type(model), "BAND_ROWS", 8)
    monkeypatch.setattr(type(model), "WHOLE_IMAGE_ROWS", 0)
    with torch.inference_mode():
        whole = model._synthesise(y)
        for short in ((decoder - 1, wavelet), (decoder, wavelet - 1)):
            monkeypatch.setattr(type(model), "synthesis_halo", property(lambda self, s=short: s))
            assert (model.g_s(y) - whole).abs().max() > 1e-4


def test_training_and_short_images_take_the_whole_image_path(model, monkeypatch):
    monkeypatch.setattr(type(model), "BAND_ROWS", 8)
    monkeypatch.setattr(type(model), "WHOLE_IMAGE_ROWS", 0)
    calls = []
    monkeypatch.setattr(type(model), "_band", lambda self, *a: calls.append(a))
    with torch.inference_mode():
        model.g_s(torch.zeros(1, TINY_WALLOC["latent_channels"], 8 + 2 * sum(model.synthesis_halo), 4))
    model.g_s(torch.zeros(1, TINY_WALLOC["latent_channels"], 64, 4, requires_grad=True))
    assert calls == []


@pytest.mark.parametrize("band", [8, 13])
@pytest.mark.parametrize("shape", [(600, 488), (776, 72)])
def test_analysis_bands_agree_with_the_whole_image(model, monkeypatch, band, shape):
    x = torch.rand(1, 3, *shape)
    with torch.inference_mode():
        whole = model.encoder(model.coefficients(x))
        monkeypatch.setattr(type(model), "BAND_ROWS", band)
        monkeypatch.setattr(type(model), "WHOLE_IMAGE_ROWS", 0)
        banded = model.g_a(x)
    torch.testing.assert_close(banded, whole, rtol=0, atol=1e-5)


def test_the_analysis_halo_is_needed(model, monkeypatch):
    x = torch.rand(1, 3, 512, 64)
    assert model.analysis_halo == 4  # 4 samples at each of 3 levels: 4 + 8 + 16 = 28 pixels
    monkeypatch.setattr(type(model), "BAND_ROWS", 8)
    monkeypatch.setattr(type(model), "WHOLE_IMAGE_ROWS", 0)
    with torch.inference_mode():
        whole = model.encoder(model.coefficients(x))
        monkeypatch.setattr(type(model), "analysis_halo", property(lambda self: 3))
        assert (model.g_a(x) - whole).abs().max() > 1e-4


def test_a_symmetric_border_model_codes_real_files(tmp_path, monkeypatch):
    """Weights with symmetric borders go through the whole codec, also in bands (a tall image)."""
    from codec import api
    from codec.models.weights import save_weights

    torch.manual_seed(0)
    config = dict(TINY_WALLOC, boundary="symmetric")
    path = tmp_path / "sym.safetensors"
    save_weights(build_model("walloc", config), path, architecture="walloc", config=config)
    monkeypatch.setattr(type(build_model("walloc", config)), "BAND_ROWS", 8)
    monkeypatch.setattr(type(build_model("walloc", config)), "WHOLE_IMAGE_ROWS", 0)
    x = torch.rand(1, 3, 40 * 8 + 5, 48)  # 41 latent rows after padding: several bands
    data = api.encode_tensor(x, str(path), 3.0)
    decoded = api.decode_to_tensor(data, model=str(path))
    assert decoded.shape == x.shape and torch.isfinite(decoded).all()


@pytest.mark.parametrize("size", [(200, 37), (233, 64), (321, 18)])
@pytest.mark.parametrize("grayscale", [False, True])
def test_coding_in_bands_gives_the_whole_image_bytes_and_pixels(banded_coding, size, grayscale):
    import numpy as np

    from codec import api, bitstream

    weights, calls = banded_coding
    height, width = size
    rng = np.random.default_rng(height)
    rgb = (np.linspace(0, 255, width)[None, :, None] + rng.normal(0, 40, (height, width, 3))).clip(0, 255).astype(np.uint8)
    if grayscale:
        rgb = np.repeat(rgb[:, :, :1], 3, axis=2)
    net = api.resolve_model(weights)
    whole = api.encode_tensor(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255, net, 3.0,
                              grayscale=grayscale)[0]
    assert not calls  # encode_tensor codes the whole image
    data = api.encode(rgb[:, :, 0] if grayscale else rgb, model=net, quality=3.0)
    assert calls == ["compress_in_bands"] and data == whole
    header, sections = bitstream.unpack(data)
    assert len(sections[1].substreams) > 2 * TINY_WALLOC["latent_channels"]  # runs across channels
    pixels = np.asarray(api.decode(data, model=net))
    assert calls == ["compress_in_bands", "decompress_in_bands"]
    expected = (api.decode_to_tensor([data], model=net)[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if grayscale:
        expected = np.round(expected.astype(np.float32).mean(axis=2)).astype(np.uint8)
    assert np.array_equal(pixels, expected)


def test_a_truncated_substream_in_bands_is_a_corrupt_payload(banded_coding):
    import numpy as np

    from codec import api, bitstream
    from codec.errors import BitstreamError

    weights, _ = banded_coding
    net = api.resolve_model(weights)
    noise = np.random.default_rng(0).integers(0, 256, (233, 40, 3), dtype=np.uint8)
    header, sections = bitstream.unpack(api.encode(noise, model=net, quality=6.0))
    y = list(sections[1].substreams)
    y[len(y) // 2] = y[len(y) // 2][:2]
    sections[1] = bitstream.Section("y", sections[1].shape, y)
    with pytest.raises(BitstreamError, match="corrupt payload"):
        api.decode(bitstream.pack(header, sections), model=net)


def test_progress_bars_count_the_rows_of_every_pass(banded_coding, monkeypatch):
    import numpy as np
    import tqdm

    from codec import api

    bars = []

    class Recorder(tqdm.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "disable": True})
            self.seen = []
            bars.append(self)

        def update(self, n=1):
            self.n += n
            self.seen.append(self.n)

        def reset(self, total=None):
            self.n = 0

    monkeypatch.setattr(tqdm, "tqdm", Recorder)
    weights, _ = banded_coding
    net = api.resolve_model(weights)
    rgb = np.random.default_rng(1).integers(0, 256, (233, 30, 3), dtype=np.uint8)
    api.decode(api.encode(rgb, model=net, quality=2.0, progress=True), model=net, progress=True)
    encode, decode = bars
    assert encode.desc.startswith("encode, pass 2") and encode.n == encode.total == 233  # y analysed twice
    assert decode.n == decode.total == 233 and len(decode.seen) > 1 and decode.seen == sorted(decode.seen)
