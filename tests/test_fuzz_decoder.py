"""tools/fuzz_decoder.py: its mutations, its oracle, its child-process worker, and a short run.

The long run (>= 100,000 cases) is the tool's; docs/bitstream.md ("Fuzzing") reports it.
"""
import importlib.util
import os
import signal
import struct
import sys
from pathlib import Path

import pytest

from codec import bitstream

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("fuzz_decoder", ROOT / "tools" / "fuzz_decoder.py")
fd = importlib.util.module_from_spec(_spec)
sys.modules["fuzz_decoder"] = fd
_spec.loader.exec_module(fd)


@pytest.fixture(scope="module")
def seeds():
    return fd.prepare_seeds(fd.seed_files())


@pytest.fixture(scope="module")
def worker():
    w = fd.Worker()
    yield w
    w.stop()


def test_segments_rebuild_every_fixture_byte_for_byte():
    files = fd.seed_files(encode=False)
    assert {name for name, _, _ in files} >= {"walloc-c6ae3726_v2.bin", "hyperprior-cce504fb_v2.bin", "walloc-c6ae3726_v1.bin"}
    for name, data, _ in files:
        seg = fd.split(data)
        assert seg.join() == data, name  # the recomputed CRC-32 is the file's
        assert seg.join(fix_crc=False) == data


def test_header_edit_recomputes_the_crc(seeds):
    seg = next(s for s in seeds if s["name"] == "walloc-c6ae3726_v2.bin")["segments"].copy()
    seg.set("width", struct.pack("<I", 95))
    header, _ = bitstream.unpack(seg.join())  # passes the CRC check: the edit reaches the checks after it
    assert header.width == 95


def test_leb128_overlong_is_refused_by_the_parser():
    assert fd.leb128(300) == bytes([0xAC, 0x02])
    assert fd.parse_leb(fd.leb128(300, extra=2)) == 300 and len(fd.leb128(300, extra=2)) == 4


def test_cases_are_reproducible(seeds):
    for case in range(50):
        assert fd.make_case(seeds, 7, case) == fd.make_case(seeds, 7, case)
    assert len({fd.make_case(seeds, 7, case)[0] for case in range(50)}) > 40


def test_oracle():
    assert fd.classify(dict(status="ok", size=[3, 2], mode="RGB", expected=[3, 2, "RGB"], rss_growth=0)) is None
    assert fd.classify(dict(status="ok", size=[3, 2], mode="RGB", expected=[3, 2, "L"], rss_growth=0)) == "wrong-output"
    err = dict(status="error", type="BitstreamError", module="codec.errors", message="corrupt file", rss_growth=0)
    assert fd.classify(err) is None
    assert fd.classify(dict(err, rss_growth=2 << 30)) == "memory"
    assert fd.classify(dict(err, type="ValueError", module="builtins")) == "exception"
    assert fd.classify(dict(err, type="InputError")) == "exception"  # docs promise BitstreamError
    assert fd.classify(dict(err, type="CodecError", message="not enough memory to decode a 9x9 image")) == "memory"
    assert fd.classify(dict(status="crash", returncode=-11)) == "crash"
    assert fd.classify(dict(status="hang", wall=31.0, cpu=5.1)) == "hang"


def test_worker_reports_a_crash_and_restarts(worker, seeds):
    data = seeds[0]["data"]
    assert worker.run(data)["status"] == "ok"
    os.kill(worker.proc.pid, signal.SIGSEGV)
    result = worker.run(data)
    assert result["status"] == "crash" and result["returncode"] == -signal.SIGSEGV
    assert worker.run(data)["status"] == "ok"  # a fresh worker


def test_short_run_finds_nothing(worker, seeds, tmp_path):
    stats = fd.fuzz(seed=0, cases=300, minutes=None, out=tmp_path, worker=worker, seeds=seeds)
    assert stats.cases == 300
    assert not stats.findings, (stats.findings, sorted(p.name for p in tmp_path.iterdir()))
    # the CRC-fixed mutations reach the payload decoder, and some mutated files still decode
    assert stats.rejected.get("corrupt payload", 0) > 10 and stats.decoded > 5


def test_a_huge_claimed_image_fails_on_its_payload_before_its_pixels_are_allocated(worker, seeds):
    """A header claiming 16384 x 16384 with matching padding and section shapes, over a tiny
    file's payload: BitstreamError, not a MemoryError from allocating the 768 MB output under
    the worker's address-space limit (found by the tenth session's fuzz run: seed 3)."""

    class Largest:  # mutate_size's first kind, its largest size
        def randrange(self, n):
            return 0

        def choice(self, options):
            return (16384, 16384)

    for seed in seeds:
        if seed["info"]["version"] < 2:
            continue
        data, _ = fd.mutate_size(Largest(), seed["segments"], seed["info"])
        result = worker.run(data)
        assert fd.classify(result) is None, (seed["name"], result)
