"""Rate control: the quality search meets bpp, size and PSNR targets with real encodes."""
import warnings

import numpy as np
import pytest
from PIL import Image

import codec
from codec import bitstream, zoo
from codec.encoding import rate_control
from codec.errors import InputError, TargetWarning

SHIPPED = [entry.name for entry in zoo.shipped_models()]
pytestmark = pytest.mark.skipif(not SHIPPED, reason="no shipped weights")


@pytest.fixture(scope="module")
def photo():
    from codec.cli.roundtrip import sample_image

    return np.asarray(Image.open(sample_image()).convert("RGB"))[128:256, 160:352].copy()


def _psnr(a, b):
    return 10 * np.log10(255**2 / np.mean((a.astype(float) - np.asarray(b, dtype=float)) ** 2))


def test_parse_size():
    assert rate_control.parse_size("50k") == 51200
    assert rate_control.parse_size("1.5M") == 1572864
    assert rate_control.parse_size("2000") == 2000
    for bad in ("", "abc", "5 kilobytes", "-3"):
        with pytest.raises(InputError):
            rate_control.parse_size(bad)
    with pytest.raises(InputError, match="less than one byte"):  # not "got 0" for a fraction
        rate_control.parse_size("0.5")


def test_targets_are_met_close_to_the_limit(photo):
    pixels = photo.shape[0] * photo.shape[1]
    low = len(codec.encode(photo, quality=1)) * 8 / pixels
    high = len(codec.encode(photo, quality=6)) * 8 / pixels
    target = low + 0.4 * (high - low)
    data = codec.encode(photo, bpp=target)
    achieved = len(data) * 8 / pixels
    assert achieved <= target and achieved >= 0.85 * target
    size = int(len(codec.encode(photo, quality=3.3)))
    assert len(codec.encode(photo, size=size)) <= size
    data = codec.encode(photo, psnr=32.0)
    assert _psnr(photo, codec.decode(data).convert("RGB")) >= 32.0
    assert bitstream.unpack(data)[0].quality < 6


def test_search_spends_at_most_the_budget(photo, monkeypatch):
    from codec import api

    calls = []
    real = api.encode

    def counting(*args, **kwargs):
        calls.append(kwargs.get("quality"))
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "encode", counting)
    rate_control.encode_to_target(photo, SHIPPED[0], rate_control.Target("bpp", 0.8))
    assert len(calls) <= rate_control.MAX_ENCODES


def test_unreachable_target_is_refused_or_nearest(photo):
    with pytest.raises(InputError, match="reaches"):
        codec.encode(photo, bpp=0.0001)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = codec.encode(photo, bpp=0.0001, best_effort=True)
    assert any(issubclass(w.category, TargetWarning) for w in caught)
    assert bitstream.unpack(data)[0].quality == 1
    with pytest.raises(InputError):
        codec.encode(photo, bpp=0.5, quality=3)


def test_cli_targets(tmp_path, photo, capsys):
    from codec.cli import main

    Image.fromarray(photo).save(tmp_path / "p.png")
    assert main(["encode", str(tmp_path / "p.png"), str(tmp_path / "p.bin"), "--size", "3k"]) == 0
    assert (tmp_path / "p.bin").stat().st_size <= 3072
    capsys.readouterr()
    assert main(["encode", str(tmp_path / "p.png"), str(tmp_path / "q.bin"), "--psnr", "99"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "cannot be met" in err and not (tmp_path / "q.bin").exists()


def test_a_psnr_target_follows_refinement_up_the_quality_range():
    """A refined file loses a little PSNR: the search steps up from the quality that missed."""
    from codec.encoding.rate_control import Attempt, _refined_above

    tried = []

    def attempt(quality, effort):
        tried.append(round(quality, 4))
        return Attempt(quality, b"x" * int(100 * quality), 30 + quality)  # PSNR rises with quality

    found = _refined_above(attempt, lambda a: a.value >= 33.25, 3.0, 6.0, 1, 3)
    assert tried == [3.1, 3.3, 3.2] and found.quality == pytest.approx(3.3)  # up 0.1, up 0.2 more, then bisect
    assert _refined_above(attempt, lambda a: a.value >= 40, 3.0, 6.0, 1, 2) is None
    tried.clear()
    assert _refined_above(attempt, lambda a: a.value >= 35.9, 5.95, 6.0, 1, 3).quality < 6.0
    assert tried[0] == 6.0 and max(tried) == 6.0  # never past the top of the range


def test_targets_that_are_not_numbers_and_best_effort_without_one():
    with pytest.raises(InputError, match="must be a number, got True"):
        rate_control.make_target("bpp", True)
    with pytest.raises(InputError, match=r"must be a number, got 1000.*\.\.\.$"):
        rate_control.make_target("psnr", 10 ** 400)
    with pytest.raises(InputError, match="best_effort"):
        codec.encode(np.zeros((8, 8, 3), np.uint8), quality=3, best_effort=True)
