"""Format version 2 through the API: named sections with the model's latent shapes, the coder
id, a substream table; every fault one BitstreamError; version 1 files decode the same."""
from pathlib import Path

import numpy as np
import pytest
import torch

import codec
from codec import api, bitstream
from codec.bitstream import Section
from codec.errors import BitstreamError, InputError

EXPECTED = Path(__file__).resolve().parent / "expected"


@pytest.fixture(scope="module")
def coded(tiny_weights):
    image = (np.arange(40 * 50 * 3) % 251).astype(np.uint8).reshape(40, 50, 3)
    return codec.encode(image, model=str(tiny_weights), quality=2.5)


def _repacked(data: bytes, edit) -> bytes:
    header, sections = bitstream.unpack(data)
    return bitstream.pack(header, edit(sections))


def test_files_are_version_2_with_the_models_layout(coded, tiny_weights):
    header, sections = bitstream.unpack(coded)
    net = api.resolve_model(str(tiny_weights))
    assert header.version == 2 and header.coder_name == "cpu"
    assert [s.name for s in sections] == list(net.stream_names) == ["z", "y"]
    shapes = net.latent_shapes(64, 64)  # 50x40 padded to multiples of 32
    assert {s.name: s.shape for s in sections} == shapes == {"z": (8, 2, 2), "y": (8, 8, 8)}
    assert all(len(s.substreams) == 1 for s in sections)


def test_section_faults_are_bitstream_errors(coded, tiny_weights):
    decode = lambda data: codec.decode(data, model=str(tiny_weights))  # noqa: E731
    expected = np.asarray(decode(coded))
    assert np.array_equal(np.asarray(decode(_repacked(coded, lambda s: s))), expected)
    edits = {
        "latent shapes": lambda s: [Section(s[0].name, (8, 2, 3), s[0].substreams), s[1]],
        "sections y, z": lambda s: s[::-1],
        "sections z, x": lambda s: [s[0], Section("x", s[1].shape, s[1].substreams)],
        "sections z, the": lambda s: s[:1],
        "substream": lambda s: [s[0], Section("y", s[1].shape, [s[1].payload[:5], s[1].payload[5:]])],
        "corrupt payload": lambda s: [s[0], Section("y", s[1].shape, [s[1].payload[:-3]])],
    }
    for message, edit in edits.items():
        with pytest.raises(BitstreamError, match=message):
            decode(_repacked(coded, edit))


def test_coder_is_chosen_by_name(coded, tiny_weights):
    x = torch.rand(1, 3, 40, 50)
    assert bitstream.unpack(api.encode_tensor(x, str(tiny_weights), 2.5, coder="cpu")[0])[0].coder == 0
    with pytest.raises(InputError, match="unknown coder 'gpu'"):
        api.encode_tensor(x, str(tiny_weights), 2.5, coder="gpu")


def test_version_1_and_2_files_of_the_same_streams_decode_alike():
    """The walloc fixture re-encoded today: the same streams in a version 2 file, the same pixels."""
    v1 = (EXPECTED / "walloc-c6ae3726_v1.bin").read_bytes()
    header, sections = bitstream.unpack(v1)
    net = api.resolve_model("walloc")
    shapes = net.latent_shapes(header.height + header.pad_bottom, header.width + header.pad_right)
    v2 = bitstream.pack(header, [Section(s.name, shapes[s.name], s.substreams) for s in sections])
    assert v2[4] == 2 and len(v2) == len(v1) + 15
    batch = api.decode_to_tensor([v1, v2])
    assert torch.equal(batch[0], batch[1])
