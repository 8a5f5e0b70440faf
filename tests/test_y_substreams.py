"""The y latents as the format's parallel substreams (docs/bitstream.md, "Substreams"): the
split of the row rule with the fixed target, coded on several threads with the same bytes,
and only that split accepted by the decoder."""
import inspect
import math
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

import codec
from codec import api, bitstream
from codec.bitstream import Section
from codec.cli.roundtrip import sample_image
from codec.entropy import coders, rangecoder
from codec.entropy.substreams import SUBSTREAM_SYMBOLS, latent_bounds, substream_rows
from codec.errors import BitstreamError
from codec.latent_codecs import GaussianConditionalLatentCodec, gaussian_conditional
from codec.models.weights import build_model
from conftest import TINY_WALLOC


@pytest.fixture(scope="module")
def kodak_sized():
    """A 768x512 photograph (the bundled sample, resized): Kodak's size."""
    with Image.open(sample_image()) as image:
        return np.asarray(image.convert("RGB").resize((768, 512), Image.BICUBIC)).copy()


@pytest.fixture
def threads(monkeypatch):
    """Set the most coder threads (as on a machine with enough cores); returns the setter."""
    monkeypatch.setattr(coders.os, "cpu_count", lambda: 16)
    return lambda n: monkeypatch.setattr(coders, "MAX_CODER_THREADS", n)


@pytest.fixture(scope="module")
def coded(kodak_sized):
    return codec.encode(kodak_sized, model="walloc", quality=2.0)


def test_the_split_is_a_constant_of_the_format():
    assert SUBSTREAM_SYMBOLS == 65536
    assert np.array_equal(latent_bounds((48, 64, 96)), substream_rows(48, 64, 96, 65536))
    assert len(latent_bounds((48, 64, 96))) - 1 == 4 and len(latent_bounds((48, 272, 480))) - 1 == 95
    assert latent_bounds((8, 8, 8)).tolist() == [0, 512]  # the fixtures' size: one substream
    assert latent_bounds((5,)).tolist() == [0, 5]


def test_thread_count_is_bounded_by_cores_substreams_and_the_cap(monkeypatch):
    monkeypatch.setattr(coders.os, "cpu_count", lambda: 2)
    assert [coders.coder_threads(s) for s in (1, 2, 95)] == [1, 2, 2]
    monkeypatch.setattr(coders.os, "cpu_count", lambda: 64)
    assert [coders.coder_threads(s) for s in (1, 3, 95)] == [1, 3, coders.MAX_CODER_THREADS]
    monkeypatch.setattr(coders.os, "cpu_count", lambda: None)
    assert coders.coder_threads(95) == 1


def test_kodak_sized_image_is_four_y_substreams_and_round_trips(coded, kodak_sized):
    header, sections = bitstream.unpack(coded)
    by_name = {s.name: s for s in sections}
    assert by_name["y"].shape == (48, 64, 96) and len(by_name["y"].substreams) == 4
    assert all(by_name["y"].substreams) and len(by_name["z"].substreams) == 1
    decoded = np.asarray(codec.decode(coded), dtype=np.float64)
    mse = np.mean((decoded - kodak_sized) ** 2)
    assert 10 * np.log10(255**2 / mse) > 25


def test_the_latents_round_trip_exactly_through_substreams(threads):
    torch.manual_seed(0)
    net = build_model("walloc", TINY_WALLOC).eval()
    net.update(force=True)
    gaussian = GaussianConditionalLatentCodec(net.gaussian_conditional, "y")
    shape = (2, 8, 96, 200)  # 153,600 values per image: 2 substreams
    y, scales, means = torch.randn(*shape) * 6, torch.rand(*shape) * 4, torch.randn(*shape)
    for n in (1, 2):
        threads(n)
        out = gaussian.compress(y, scales, means)
        assert [len(s) for s in out["strings"]["y"]] == [2, 2]
        assert torch.equal(gaussian.decompress(out["strings"], out["shapes"], scales, means)["y_hat"], out["y_hat"])


def test_bytes_do_not_depend_on_the_thread_count(kodak_sized, coded, threads, monkeypatch):
    used = []
    encode_substreams = rangecoder.encode_substreams_with

    def spy(*args):
        used.append(args[-1])
        return encode_substreams(*args)

    monkeypatch.setattr(rangecoder, "encode_substreams_with", spy)
    files = {}
    for n in (1, 2):
        threads(n)
        files[n] = codec.encode(kodak_sized, model="walloc", quality=2.0)
        assert used[-1] == n  # the y stream's 4 substreams ran on n threads
    assert files[1] == files[2] == coded
    threads(1)
    one = np.asarray(codec.decode(coded))
    threads(2)
    assert np.array_equal(np.asarray(codec.decode(coded)), one)


def _repacked(data: bytes, y_substreams) -> bytes:
    """The file with the y section's substreams replaced (pack recomputes the CRC-32)."""
    header, sections = bitstream.unpack(data)
    return bitstream.pack(header, [Section(s.name, s.shape, y_substreams(s.substreams)) if s.name == "y" else s
                                   for s in sections])


def test_another_substream_count_or_a_corrupt_substream_is_refused(coded):
    refused = {
        "must be 4 substreams .* got 1": lambda s: [b"".join(s)],
        "must be 4 substreams .* got 3": lambda s: [s[0], s[1] + s[2], s[3]],
        "must be 4 substreams .* got 5": lambda s: [s[0], s[1][:9], s[1][9:], s[2], s[3]],
        "substream 2": lambda s: [s[0], s[1], b"", s[3]],
    }
    for message, edit in refused.items():
        data = _repacked(coded, edit)
        assert bitstream.unpack(data)  # a well-formed container: the payload is what is wrong
        with pytest.raises(BitstreamError, match=f"corrupt payload: .*{message}"):
            codec.decode(data)
    assert codec.decode(_repacked(coded, list)).size == (768, 512)  # the same split repacked decodes


def _version_1(data: bytes) -> bytes:
    """The same header and streams as a version 1 file (docs/bitstream.md, "Version 1")."""
    h, sections = bitstream.unpack(data)
    name = h.model.encode()
    head = bitstream.MAGIC + struct.pack("<BBB", 1, h.flags, len(name)) + name + h.weights_hash
    head += struct.pack("<fIIHHB", h.quality, h.width, h.height, h.pad_right, h.pad_bottom, len(sections))
    head += b"".join(bitstream._leb128(len(s.payload)) for s in sections)
    payload = b"".join(s.payload for s in sections)
    return head + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head))) + payload


def test_version_1_files_keep_one_y_stream_of_any_size(kodak_sized, monkeypatch):
    """Version 1 files coded y as one stream whatever its size: they still decode, to the pixels
    of today's file of the same image; in a version 2 file one stream is refused."""
    x = torch.from_numpy(kodak_sized).permute(2, 0, 1)[None].float() / 255
    # Version 1 files have float entropy parameters (an option only where integer ones exist).
    options = {"integer_parameters": False} if "integer_parameters" in inspect.signature(api.encode_tensor).parameters \
        else {}
    split = api.encode_tensor(x, "walloc", 2.0, **options)[0]
    one_stream = lambda shape: np.array([0, math.prod(shape)])  # noqa: E731
    monkeypatch.setattr(gaussian_conditional, "latent_bounds", one_stream)
    single = api.encode_tensor(x, "walloc", 2.0, **options)[0]
    monkeypatch.undo()
    assert [len(s.substreams) for s in bitstream.unpack(single)[1]] == [1, 1]
    assert [len(s.substreams) for s in bitstream.unpack(split)[1]] == [1, 4]
    v1 = _version_1(single)
    assert bitstream.unpack(v1)[0].version == 1
    assert np.array_equal(np.asarray(codec.decode(v1)), np.asarray(codec.decode(split)))
    with pytest.raises(BitstreamError, match="must be 4 substreams"):
        codec.decode(single)
