"""The coder seam: tables converted and validated once per model, coder backends by name and id,
compressai's private table buffers read in one place of a pinned compressai version range."""
import re
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import torch

from codec.entropy import coders, entropy_tables, get_coder
from codec.entropy.compressai_models import COMPRESSAI_VERSIONS, TABLE_BUFFERS
from codec.entropy.tables import EntropyTables
from codec.models.weights import build_model
from conftest import TINY_WALLOC

ROOT = Path(__file__).resolve().parents[1]
GOOD = ([[0, 100, 65536, 0], [0, 1, 2, 65536]], [3, 4], [0, -1])


def test_tables_are_converted_frozen_and_validated():
    tables = EntropyTables.from_arrays(*GOOD)
    assert tables.cdfs.dtype == np.int32 and tables.cdfs.flags.c_contiguous and len(tables) == 2
    with pytest.raises(ValueError):
        tables.cdfs[0, 0] = 1  # read-only
    bad = {
        "start at 0": ([[1, 100, 65536, 0]], [3], [0]),
        "end at 65536": ([[0, 100, 65535, 0]], [3], [0]),
        "strictly increasing": ([[0, 100, 100, 65536]], [4], [0]),
        r"not in \[2, 4\]": ([[0, 65536, 0, 0]], [5], [0]),
        "lengths": ([[0, 65536]], [2, 2], [0]),
        "no tables": (np.zeros((0, 3), np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32)),
        "integer": ([[0.0, 65536.0]], [2], [0]),
    }
    for message, arrays in bad.items():
        with pytest.raises(ValueError, match=message):
            EntropyTables.from_arrays(*arrays)


def test_coders_by_name_and_id():
    cpu = get_coder("cpu")
    assert (cpu.name, cpu.id) == ("cpu", 0) and coders.coder_name(0) == "cpu" and coders.coder_name(200) is None
    with pytest.raises(ValueError, match="unknown coder 'gpu'; known: cpu"):
        get_coder("gpu")
    with pytest.raises(ValueError, match="clashes"):
        coders.register_coder(type(cpu))
    tables = EntropyTables.from_arrays(*GOOD)
    symbols, indexes = np.array([0, 1, -5, 7], np.int32), np.array([0, 1, 1, 0], np.int32)
    assert cpu.decode(cpu.encode(symbols, indexes, tables), indexes, tables).tolist() == symbols.tolist()


def test_model_tables_are_built_once_per_version_of_the_buffers():
    torch.manual_seed(0)
    model = build_model("walloc", TINY_WALLOC)
    model.update(force=True)
    for module in (model.entropy_bottleneck, model.gaussian_conditional):
        tables = entropy_tables(module)
        assert entropy_tables(module) is tables  # cached
        for array, name in zip((tables.cdfs, tables.cdf_lengths, tables.offsets), TABLE_BUFFERS):
            assert np.array_equal(array, getattr(module, name).reshape(array.shape).numpy())
    before = entropy_tables(model.entropy_bottleneck)
    with torch.no_grad():
        model.entropy_bottleneck.quantiles.add_(0.5)
    model.update(force=True)  # new tensors
    assert entropy_tables(model.entropy_bottleneck) is not before
    other = build_model("walloc", TINY_WALLOC)
    other.update(force=True)
    cached = entropy_tables(other.entropy_bottleneck)
    other.load_state_dict(model.state_dict())  # in-place copies: new versions
    assert entropy_tables(other.entropy_bottleneck) is not cached
    assert np.array_equal(entropy_tables(other.entropy_bottleneck).cdfs, entropy_tables(model.entropy_bottleneck).cdfs)


def test_compressai_version_is_pinned_and_its_buffers_are_read_in_one_place():
    low, high = COMPRESSAI_VERSIONS
    installed = tuple(int(part) for part in re.findall(r"\d+", version("compressai"))[:3])
    assert low <= installed < high
    pin = ">=" + ".".join(map(str, low)) + ",<" + ".".join(map(str, high))
    assert f'"compressai{pin}"' in (ROOT / "pyproject.toml").read_text()
    readers = {str(p.relative_to(ROOT)) for p in (ROOT / "codec").rglob("*.py")
               if re.search(r"\._(quantized_cdf|cdf_length|offset)\b", p.read_text())}
    assert readers == {"codec/entropy/compressai_models.py"}
