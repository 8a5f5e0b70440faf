"""Tests of the ``cuda`` coder backend (codec.entropy.cuda_coder, codec._cuda_rangecoder).

Without a GPU only its registration and its CPU fallback run here; the GPU cases skip (they
are run by ``tools/gpu_check.py`` on a GPU machine).
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("codec.entropy.rangecoder", reason="codec._rangecoder not built (pip install -e .)")
torch = pytest.importorskip("torch")

from codec.entropy import get_coder  # noqa: E402
from codec.entropy.cuda_coder import build_status, cuda_available  # noqa: E402
from codec.entropy.tables import EntropyTables  # noqa: E402
from test_cuda_core import random_case  # noqa: E402

GPU = pytest.mark.skipif(not (torch.cuda.is_available() and cuda_available()),
                         reason="needs a CUDA GPU and codec._cuda_rangecoder")


def case(seed: int, n: int = 5000):
    sym, idx, cdfs, lengths, offsets = random_case(seed, n=n)
    return sym, idx, EntropyTables.from_arrays(cdfs, lengths, offsets)


def test_registered_with_the_cpu_coders_id():
    cuda, cpu = get_coder("cuda"), get_coder("cpu")
    assert cuda.id == cpu.id == 0 and cuda.writes == "cpu"
    assert isinstance(build_status(), str)


@pytest.mark.parametrize("seed", range(3))
def test_same_bytes_as_cpu_backend(seed):
    """On the GPU where there is one, else through the CPU fallback: the cpu backend's bytes."""
    sym, idx, tables = case(seed)
    cuda, cpu = get_coder("cuda"), get_coder("cpu")
    bounds = np.array([0, 1000, 1000, 4000, 5000], np.int64)
    strings = cuda.encode_substreams(sym, idx, tables, bounds)
    assert strings == cpu.encode_substreams(sym, idx, tables, bounds)
    np.testing.assert_array_equal(cuda.decode_substreams(strings, idx, tables, bounds), sym)
    data = cuda.encode(sym, idx, tables)
    assert data == cpu.encode(sym, idx, tables)
    np.testing.assert_array_equal(cuda.decode(data, idx, tables), sym)


@GPU
@pytest.mark.parametrize("seed", range(8))
def test_gpu_module_same_bytes_many_substreams(seed):
    from codec import _cuda_rangecoder as ext
    from codec.entropy import rangecoder as rc

    sym, idx, cdfs, lengths, offsets = random_case(seed, n=40000)
    rng = np.random.default_rng(seed)
    bounds = np.concatenate([[0], np.sort(rng.integers(0, len(sym) + 1, 300)), [len(sym)]]).astype(np.int64)
    dev = [torch.from_numpy(a).cuda() for a in (sym, idx, cdfs, lengths, offsets)]
    strings = ext.encode_substreams(*dev, bounds)
    assert strings == rc.encode_substreams(sym, idx, cdfs, lengths, offsets, bounds)
    out = torch.full((len(sym),), 7, dtype=torch.int32, device="cuda")
    ext.decode_substreams(strings, dev[1], *dev[2:], bounds, out)
    np.testing.assert_array_equal(out.cpu().numpy(), sym)


@GPU
def test_gpu_corrupt_and_bad_arguments():
    from codec import _cuda_rangecoder as ext

    sym, idx, cdfs, lengths, offsets = random_case(1, n=3000)
    s, i, c, ln, o = [torch.from_numpy(a).cuda() for a in (sym, idx, cdfs, lengths, offsets)]
    bounds = np.array([0, 1000, 2000, 3000], np.int64)
    strings = ext.encode_substreams(s, i, c, ln, o, bounds)
    out = torch.empty(3000, dtype=torch.int32, device="cuda")
    for cut in range(len(strings[1])):
        bad = [strings[0], strings[1][:cut], strings[2]]
        try:
            ext.decode_substreams(bad, i, c, ln, o, bounds, out)
        except ValueError as err:
            assert str(err).startswith("substream 1: elements 1000..2000: ")
    with pytest.raises(ValueError, match="substream 1"):
        ext.decode_substreams([strings[0], strings[1][:2], strings[2]], i, c, ln, o, bounds, out)
    with pytest.raises(TypeError, match="int32"):
        ext.encode_substreams(s.long(), i, c, ln, o, bounds)
    with pytest.raises(ValueError, match="C-contiguous"):
        ext.encode_substreams(torch.stack([s, s], 1)[:, 0], i, c, ln, o, bounds)
    with pytest.raises(ValueError, match="same length"):
        ext.encode_substreams(s[:10], i, c, ln, o, bounds)
    with pytest.raises(ValueError, match="last bound"):
        ext.encode_substreams(s, i, c, ln, o, np.array([0, 10], np.int64))
    with pytest.raises(ValueError, match="out of range"):
        ext.encode_substreams(s, torch.full_like(i, 10**6), c, ln, o, bounds)
    bad_tables = c.clone()
    bad_tables[0, 1] = 0
    with pytest.raises(ValueError, match="strictly increasing"):
        ext.encode_substreams(s, i, bad_tables, ln, o, bounds)
    with pytest.raises(ValueError, match="out has"):
        ext.decode_substreams(strings, i, c, ln, o, bounds, out[:5])


@GPU
def test_gpu_file_decodes_on_cpu():
    """A file written with coder="cuda" is the cpu coder's file."""
    from codec import api
    from codec.cli.roundtrip import sample_image
    from PIL import Image

    with Image.open(sample_image()) as im:
        x = torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1)[None].float() / 255
    assert api.encode_tensor(x, "walloc", 3.5, coder="cuda") == api.encode_tensor(x, "walloc", 3.5, coder="cpu")
