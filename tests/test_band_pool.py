"""Bands of one image on several threads (codec.band_pool): the same bytes and pixels as on
one thread, the work really on the pool's threads, and the thread count checked."""
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from codec.band_pool import Prefetcher, band_pool, band_threads, default_threads, in_order, threads_for_bands


def test_default_threads_are_the_cores_up_to_the_cap():
    assert 1 <= default_threads() <= 2
    with threads_for_bands(3):
        assert band_threads() == 3
        with threads_for_bands(None):
            assert band_threads() == default_threads()
    assert band_threads() == default_threads()
    with pytest.raises(ValueError, match="at least 1"):
        with threads_for_bands(0):
            pass


@pytest.mark.parametrize("threads", [1, 3])
def test_prefetcher_gives_each_band_and_computes_ahead_on_the_pool(threads):
    ran = []

    def compute(start, stop):
        ran.append((start, threading.current_thread().name))
        return np.arange(start, stop)

    with threads_for_bands(threads), band_pool() as pool:
        bands = Prefetcher(compute, 23, 5, pool)
        got = [bands(start, min(23, start + 5)) for start in range(0, 23, 5)]
        assert np.array_equal(np.concatenate(got), np.arange(23))
        assert bands(3, 9).tolist() == list(range(3, 9))  # not a band: computed at once
        assert bands(10, 15).tolist() == list(range(10, 15))  # asked for again: computed at once
    starts = sorted(start for start, _ in ran)
    assert starts == [0, 3, 5, 10, 10, 15, 20]  # each band once, but for the two computed at once
    on_pool = {start for start, name in ran if name.startswith("codec-band")}
    assert on_pool == ({5, 10, 15, 20} if threads > 1 else set())


@pytest.mark.parametrize("in_flight", [None, 1, 2, 0])
def test_in_order_keeps_the_order_and_at_most_in_flight_jobs_running(in_flight):
    expected = min(3, 1 + (3 if in_flight is None else max(1, in_flight)))  # 3 threads
    changed, running, most = threading.Condition(), [0], [0]

    def work(k):
        with changed:
            running[0] += 1
            most[0] = max(most[0], running[0])
            changed.notify_all()
            changed.wait_for(lambda: most[0] >= expected, timeout=0.5)  # until the most overlap is seen
            running[0] -= 1
        return k * k

    with threads_for_bands(3), band_pool() as pool:
        results = list(in_order(pool, work, [(k,) for k in range(8)], in_flight))
    assert results == [k * k for k in range(8)]
    assert most[0] == expected


@pytest.mark.parametrize("threads", [1, 2])
def test_a_band_read_by_several_consumers_is_computed_once(threads):
    ran = []
    with threads_for_bands(threads), band_pool() as pool:
        bands = Prefetcher(lambda start, stop: ran.append(start) or start, 20, 5, pool, uses=3)
        assert [bands(start, start + 5) for start in range(0, 20, 5) for _ in range(3)] == [0] * 3 + [5] * 3 + [10] * 3 + [15] * 3
    assert sorted(ran) == [0, 5, 10, 15] and not bands.started  # kept until the last use, then forgotten


@pytest.fixture
def tall_image_coding(banded_coding):
    """test_walloc_bands' tiny symmetric walloc coded in bands of 8 latent rows (parameters
    in bands of 4, substreams of about 64 values), as a model."""
    from codec import api

    return api.resolve_model(banded_coding[0])


@pytest.mark.parametrize("size", [(233, 64), (321, 18)])
def test_threads_change_neither_bytes_nor_pixels(tall_image_coding, monkeypatch, size):
    from codec import api
    from codec.models.walloc import WaLLoC

    net = tall_image_coding
    names = set()
    for method in ("_analysis_band", "_band"):
        original = getattr(WaLLoC, method)
        monkeypatch.setattr(WaLLoC, method, lambda self, *a, _o=original: names.add(threading.current_thread().name)
                            or _o(self, *a))
    rgb = np.random.default_rng(size[0]).integers(0, 256, (*size, 3), dtype=np.uint8)
    one = api.encode(rgb, model=net, quality=3.0, threads=1)
    assert names == {threading.current_thread().name}
    pixels = np.asarray(api.decode(one, model=net, threads=1))
    for threads in (2, 3):
        names.clear()
        assert api.encode(rgb, model=net, quality=3.0, threads=threads) == one
        assert np.array_equal(np.asarray(api.decode(one, model=net, threads=threads)), pixels)
        assert names and all(name.startswith("codec-band") for name in names)
    whole = api.encode_tensor(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255, net, 3.0)[0]
    assert one == whole


def test_library_threads_are_checked(tall_image_coding):
    from codec import api
    from codec.errors import InputError

    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(InputError, match="threads must be an integer of at least 1"):
            api.encode(np.zeros((8, 8, 3), np.uint8), model=tall_image_coding, threads=bad)


@pytest.mark.parametrize("value", ["0", "-2", "x"])
def test_bad_thread_counts_exit_2_without_output(tmp_path, value):
    from PIL import Image

    source, out = tmp_path / "in.png", tmp_path / "out.bin"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(source)
    result = subprocess.run([sys.executable, "-m", "codec", "encode", str(source), str(out), "--threads", value],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("codec encode: error: argument --threads")
    assert not out.exists()
