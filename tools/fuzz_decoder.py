#!/usr/bin/env python
"""Fuzz the whole decoder: mutated real files through ``codec.decode`` in a child process.

The seed files are the committed fixtures (``tests/expected/*_v2.bin``, and the v1 ones) and
files encoded at start-up from crops of ``codec/data/astronaut.png`` at a few sizes, qualities
and the shipped and retired weights of every family (tiny images, so that a decode takes milliseconds). Each file is split
into named segments (every header field, every section-table entry, the CRC-32, every
substream), and every case applies one mutation:

  * bit flips, byte overwrites, insertions, deletions, truncations, appended bytes, anywhere
    in the file, half of them with the CRC-32 recomputed so the mutation reaches the parser
    and the payload decoder instead of the CRC check;
  * header field edits with the CRC recomputed (version, flags, model name, weights hash,
    quality, width, height, padding, coder id, section count), including a huge image whose
    padding and section shapes are made consistent so that only the payload stands in the way;
  * section-table edits with the CRC recomputed: names, rank, shape sizes, substream count and
    lengths (moved between substreams, changed, overlong LEB128), swapped or dropped sections;
  * payload edits with the CRC recomputed: flipped or random bytes, shortened or lengthened
    substreams with the table updated to match, substreams swapped between files;
  * random bytes behind a valid magic (and behind a valid header prefix).

Oracle: ``codec.decode`` returns an image of the size the header states, or raises
``codec.errors.BitstreamError`` (docs/bitstream.md: "one BitstreamError for every fault").
A finding is any other exception type, a crash (the worker dies, e.g. by a signal), a hang
(more than 5 CPU-seconds, or 30 s of wall time, on one case), a memory spike (the worker's
peak RSS grows by more than 1 GiB, or an allocation fails under its address-space limit of
its size after warm-up + 1 GiB), or an image of the wrong size or mode. Each finding is saved
as ``<out>/<kind>-<n>.bin`` (the case's bytes) with a ``.json`` beside it (seed, case number,
mutation, result); a case is reproduced by ``--seed S --case N``, or its file by ``--replay``.

Usage:
  python tools/fuzz_decoder.py [--seed S] [--cases N] [--minutes M] [--out DIR]
  python tools/fuzz_decoder.py --seed S --case N        # rerun one case, print its result
  python tools/fuzz_decoder.py --replay FILE.bin        # decode one saved case in a worker
Exit status 0 when no finding was made.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import resource
import select
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "expected"
MEMORY_LIMIT = 1 << 30
HANG_CPU_S = 5.0
HANG_WALL_S = 30.0
#: Exceptions the documentation promises from codec.decode for a bad file.
DOCUMENTED = ("BitstreamError",)


# --------------------------------------------------------------------------------------------
# Files as segments
# --------------------------------------------------------------------------------------------

def leb128(value: int, extra: int = 0) -> bytes:
    """Unsigned LEB128 of ``value``; ``extra`` > 0 appends that many redundant groups (overlong)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value or extra else 0))
        if not value:
            break
    for i in range(extra):
        out.append(0x80 if i < extra - 1 else 0)
    return bytes(out)


@dataclass
class Segments:
    """A file as an ordered list of (name, bytes); the ``crc`` segment is recomputed by ``join``.

    Names: ``magic``, ``version``, ``flags``, ``name_len``, ``name``, ``hash``, ``quality``,
    ``width``, ``height``, ``pad_right``, ``pad_bottom``, ``coder`` (v2), ``count``, then per
    section ``sK.name_len``, ``sK.name``, ``sK.rank``, ``sK.dimJ``, ``sK.nsub``, ``sK.lenJ``
    (v1: ``sK.len``), ``crc``, then ``pK.J`` (substream J of section K).
    """

    parts: list[tuple[str, bytes]] = field(default_factory=list)

    def copy(self) -> "Segments":
        return Segments(list(self.parts))

    def index(self, name: str) -> int:
        return next(i for i, (n, _) in enumerate(self.parts) if n == name)

    def get(self, name: str) -> bytes:
        return self.parts[self.index(name)][1]

    def set(self, name: str, value: bytes) -> None:
        self.parts[self.index(name)] = (name, value)

    def names(self, prefix: str = "") -> list[str]:
        return [n for n, _ in self.parts if n.startswith(prefix)]

    def join(self, fix_crc: bool = True) -> bytes:
        head = b"".join(v for n, v in self.parts[: self.index("crc")])
        payload = b"".join(v for n, v in self.parts[self.index("crc") + 1:])
        crc = struct.pack("<I", zlib.crc32(payload, zlib.crc32(head))) if fix_crc else self.get("crc")
        return head + crc + payload


def split(data: bytes) -> Segments:
    """Segments of a valid version 1 or 2 file (the seed files; no checks beyond the layout)."""
    pos = 0
    parts: list[tuple[str, bytes]] = []

    def take(name: str, n: int) -> bytes:
        nonlocal pos
        chunk = data[pos:pos + n]
        parts.append((name, chunk))
        pos += n
        return chunk

    def take_leb(name: str) -> int:
        nonlocal pos
        start, value, shift = pos, 0, 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        parts.append((name, data[start:pos]))
        return value

    take("magic", 4)
    version = take("version", 1)[0]
    take("flags", 1)
    take("name", take("name_len", 1)[0])
    for name, size in (("hash", 8), ("quality", 4), ("width", 4), ("height", 4), ("pad_right", 2), ("pad_bottom", 2)):
        take(name, size)
    if version >= 2:
        take("coder", 1)
    count = take("count", 1)[0]
    lengths: list[list[int]] = []
    for k in range(count):
        if version == 1:
            lengths.append([take_leb(f"s{k}.len")])
            continue
        take(f"s{k}.name", take(f"s{k}.name_len", 1)[0])
        for j in range(take(f"s{k}.rank", 1)[0]):
            take_leb(f"s{k}.dim{j}")
        lengths.append([take_leb(f"s{k}.len{j}") for j in range(take_leb(f"s{k}.nsub"))])
    take("crc", 4)
    for k, section in enumerate(lengths):
        for j, n in enumerate(section):
            take(f"p{k}.{j}", n)
    if pos != len(data):
        raise ValueError("seed file has bytes after its payload")
    return Segments(parts)


def parse_leb(raw: bytes) -> int:
    return sum((b & 0x7F) << (7 * i) for i, b in enumerate(raw))


# --------------------------------------------------------------------------------------------
# Mutations: each takes (rng, seed Segments, seed info, all seeds) and returns (bytes, description)
# --------------------------------------------------------------------------------------------

INTERESTING_U32 = [0, 1, 2, 31, 32, 33, 63, 64, 65, 255, 256, 16383, 16384, 16385, 65535, 65536, 1 << 24,
                   (1 << 31) - 1, 1 << 31, (1 << 32) - 1]
INTERESTING_LEB = [0, 1, 2, 3, 127, 128, 255, 4096, 65535, 65536, 65537, (1 << 28) - 1, 1 << 28, (1 << 35) - 1]
INTERESTING_F32 = [float("nan"), float("inf"), float("-inf"), -0.0, 0.0, 0.999999, 1.0, 6.0, 6.000001, 3.5, -3.0,
                   1e30, 1e-45, 3.4028235e38]


def _flip_bytes(rng: random.Random, data: bytearray, start: int, end: int) -> str:
    n = rng.choice([1, 1, 1, 2, 3, 8])
    for _ in range(n):
        p = rng.randrange(start, end)
        data[p] ^= 1 << rng.randrange(8)
    return f"{n} bit flips"


def _overwrite(rng: random.Random, data: bytearray, start: int, end: int) -> str:
    p = rng.randrange(start, end)
    n = rng.choice([1, 1, 2, 4, 8])
    value = bytes(rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)]) for _ in range(n))
    data[p:p + n] = value
    return f"overwrite {n} at {p}"


def mutate_bytes(rng: random.Random, seg: Segments) -> tuple[bytes, str]:
    """A byte-level mutation anywhere in the file, or inside one segment with the CRC recomputed."""
    fix = rng.random() < 0.6
    op = rng.choice(["flip", "flip", "overwrite", "insert", "delete", "truncate", "append"])
    if fix:
        seg = seg.copy()
        names = [n for n in seg.names() if n != "crc" and n != "magic"]
        name = rng.choice(names) if rng.random() < 0.5 else rng.choice([n for n in names if n.startswith("p")] or names)
        value = bytearray(seg.get(name))
        if not value:
            value = bytearray(b"\x00")
        what = _apply(rng, op, value)
        seg.set(name, bytes(value))
        return seg.join(True), f"{what} in {name}, CRC fixed"
    data = bytearray(seg.join(False))
    what = _apply(rng, op, data)
    return bytes(data), what


def _apply(rng: random.Random, op: str, data: bytearray) -> str:
    if op == "flip":
        return _flip_bytes(rng, data, 0, len(data))
    if op == "overwrite":
        return _overwrite(rng, data, 0, len(data))
    if op == "insert":
        p = rng.randrange(len(data) + 1)
        n = rng.choice([1, 1, 2, 7, 64])
        data[p:p] = rng.randbytes(n)
        return f"insert {n} at {p}"
    if op == "delete":
        p = rng.randrange(len(data))
        n = rng.choice([1, 1, 2, 7])
        del data[p:p + n]
        return f"delete {n} at {p}"
    if op == "truncate":
        n = rng.randrange(len(data))
        del data[n:]
        return f"truncate to {n}"
    n = rng.choice([1, 4, 100])
    data += rng.randbytes(n)
    return f"append {n}"


def mutate_header(rng: random.Random, seg: Segments, info: dict) -> tuple[bytes, str]:
    """One header field set to an edge or random value, CRC recomputed."""
    seg = seg.copy()
    name = rng.choice(["version", "flags", "name", "hash", "quality", "width", "height", "pad_right", "pad_bottom",
                       "coder", "count", "name_len"])
    if name not in seg.names():
        name = "version"
    if name == "version":
        v = rng.choice([0, 1, 2, 3, 255])
        seg.set(name, bytes([v]))
        return seg.join(), f"version {v}"
    if name in ("flags", "coder", "count", "name_len"):
        v = rng.choice([0, 1, 2, 3, 8, 9, 32, 33, 128, 255, rng.randrange(256)])
        seg.set(name, bytes([v]))
        return seg.join(), f"{name} {v}"
    if name == "name":
        kind = rng.randrange(4)
        if kind == 0:
            other = rng.choice(["walloc", "hyperprior", "x", "walloc2", "hyperprior@cce504fb", "A" * 32])
        elif kind == 1:
            other = "".join(chr(rng.randrange(0x21, 0x7F)) for _ in range(rng.randrange(1, 33)))
        else:
            raw = rng.randbytes(rng.randrange(1, 40))
            seg.set("name", raw)
            if kind == 3:
                seg.set("name_len", bytes([len(raw) & 0xFF]))
            return seg.join(), f"model name bytes {raw.hex()} (length field {'fixed' if kind == 3 else 'kept'})"
        seg.set("name", other.encode())
        seg.set("name_len", bytes([len(other)]))
        return seg.join(), f"model name {other!r}"
    if name == "hash":
        h = rng.choice([rng.randbytes(8), bytes(8), bytes.fromhex("cce504fb33e04db0"),
                        bytes.fromhex("c6ae3726b84a944e")])
        seg.set(name, h)
        return seg.join(), f"weights hash {h.hex()}"
    if name == "quality":
        q = rng.choice(INTERESTING_F32 + [rng.uniform(-10, 10)])
        raw = struct.pack("<f", q) if rng.random() < 0.9 else rng.randbytes(4)
        seg.set(name, raw)
        return seg.join(), f"quality bytes {raw.hex()}"
    if name in ("width", "height"):
        v = rng.choice(INTERESTING_U32 + [rng.randrange(1, 200)])
        seg.set(name, struct.pack("<I", v))
        return seg.join(), f"{name} {v}"
    v = rng.choice([0, 1, 15, 16, 31, 32, 63, 64, 65535, rng.randrange(65536)])
    seg.set(name, struct.pack("<H", v))
    return seg.join(), f"{name} {v}"


def mutate_size(rng: random.Random, seg: Segments, info: dict) -> tuple[bytes, str]:
    """Another image size with padding and section shapes made consistent (CRC recomputed):
    only the payload is left to refuse it. Includes the largest sizes the format allows."""
    seg = seg.copy()
    m = info["pad_multiple"]
    kind = rng.randrange(4)
    if kind == 0:
        w, h = rng.choice([(16384, 4096), (4096, 16384), (8192, 8192), (16384, 16384), (16383, 4097)])
    elif kind == 1:
        w, h = rng.randrange(1, 16385), rng.randrange(1, 4097)
    else:
        w, h = rng.randrange(1, 300), rng.randrange(1, 300)
    pr, pb = -w % m, -h % m
    for name, fmt, v in (("width", "<I", w), ("height", "<I", h), ("pad_right", "<H", pr), ("pad_bottom", "<H", pb)):
        seg.set(name, struct.pack(fmt, v))
    if info["version"] >= 2:
        shapes = info["shapes"](h + pb, w + pr)
        for k, sname in enumerate(info["stream_names"]):
            for j, d in enumerate(shapes[sname]):
                if f"s{k}.dim{j}" in seg.names():
                    seg.set(f"s{k}.dim{j}", leb128(d))
    return seg.join(), f"image size {w}x{h} with matching padding and shapes"


def _set_lengths(seg: Segments, k: int, sizes: list[bytes], overlong: int = 0) -> None:
    """Replace section k's substreams by ``sizes`` and its table entry to match (v2 files)."""
    parts = []
    for n, v in seg.parts:
        if n.startswith(f"s{k}.len") or n.startswith(f"p{k}."):
            continue
        parts.append((n, v))
        if n == f"s{k}.nsub":
            parts.extend((f"s{k}.len{j}", leb128(len(s), overlong)) for j, s in enumerate(sizes))
    # payload after the header, in section order
    crc = next(i for i, (n, _) in enumerate(parts) if n == "crc")
    head, payload = parts[:crc + 1], parts[crc + 1:]
    pay = [(n, v) for n, v in payload]
    insert_at = next((i for i, (n, _) in enumerate(pay) if int(n[1:].split(".")[0]) > k), len(pay))
    pay[insert_at:insert_at] = [(f"p{k}.{j}", s) for j, s in enumerate(sizes)]
    seg.parts = head + pay
    seg.set(f"s{k}.nsub", leb128(len(sizes)))


def mutate_table(rng: random.Random, seg: Segments, info: dict, seeds: list) -> tuple[bytes, str]:
    """A section-table or payload edit with the CRC recomputed (v2 files)."""
    seg = seg.copy()
    if info["version"] < 2:
        return mutate_bytes(rng, seg)
    k = rng.randrange(int(seg.get("count")[0]))
    op = rng.choice(["name", "rank", "dim", "dim", "nsub", "split", "split", "move", "lenfield", "overlong",
                     "payload", "payload", "random_sub", "resize", "swap", "foreign", "drop"])
    subs = [seg.get(n) for n in seg.names(f"p{k}.")]
    whole = b"".join(subs)
    if op == "name":
        new = rng.choice([b"y", b"z", b"x", b"yy", b"", b"\x00", b"y" * 17, rng.randbytes(rng.randrange(1, 8))])
        seg.set(f"s{k}.name", new)
        seg.set(f"s{k}.name_len", bytes([len(new)]) if rng.random() < 0.8 else bytes([rng.randrange(256)]))
        return seg.join(), f"section {k} name {new!r}"
    if op == "rank":
        r = rng.choice([0, 1, 2, 4, 5, 255])
        seg.set(f"s{k}.rank", bytes([r]))
        return seg.join(), f"section {k} rank {r} (dims kept)"
    if op == "dim":
        dims = seg.names(f"s{k}.dim")
        d = rng.choice(dims)
        v = rng.choice(INTERESTING_LEB + [parse_leb(seg.get(d)) + rng.choice([-1, 1])])
        raw = leb128(max(v, 0), rng.choice([0, 0, 0, 1]))
        seg.set(d, raw if rng.random() < 0.95 else rng.randbytes(rng.randrange(1, 7)))
        return seg.join(), f"section {k} {d} = {seg.get(d).hex()}"
    if op == "nsub":
        v = rng.choice([0, 2, 3, 65536, 65537, (1 << 35) - 1])
        seg.set(f"s{k}.nsub", leb128(v))
        return seg.join(), f"section {k} substream count {v} (lengths kept)"
    if op == "split":
        n = rng.choice([2, 2, 3, 8, 100, 65536, 65537]) if whole else 2
        if n > 1000:
            sizes = [b""] * (n - 1) + [whole]
        else:
            cuts = sorted(rng.randrange(len(whole) + 1) for _ in range(n - 1))
            sizes = [whole[a:b] for a, b in zip([0] + cuts, cuts + [len(whole)])]
        _set_lengths(seg, k, sizes)
        return seg.join(), f"section {k} split into {n} substreams"
    if op == "move":
        if len(subs) == 1 and whole:
            return mutate_table(rng, seg, info, seeds)
        cut = rng.randrange(len(whole) + 1)
        _set_lengths(seg, k, [whole[:cut], whole[cut:]])
        return seg.join(), f"section {k} bytes moved between substreams at {cut}"
    if op == "lenfield":
        name = rng.choice(seg.names(f"s{k}.len"))
        v = rng.choice(INTERESTING_LEB + [max(0, parse_leb(seg.get(name)) + rng.choice([-2, -1, 1, 2]))])
        seg.set(name, leb128(v))
        return seg.join(), f"{name} = {v} (payload kept)"
    if op == "overlong":
        _set_lengths(seg, k, subs, overlong=rng.choice([1, 2, 4]))
        return seg.join(), f"section {k} lengths overlong"
    if op == "payload":
        j = rng.randrange(len(subs))
        raw = bytearray(subs[j]) or bytearray(b"\x00")
        what = _flip_bytes(rng, raw, 0, len(raw)) if rng.random() < 0.6 else _overwrite(rng, raw, 0, len(raw))
        seg.set(f"p{k}.{j}", bytes(raw[: len(subs[j])]))
        return seg.join(), f"payload p{k}.{j}: {what}, CRC fixed"
    if op == "random_sub":
        j = rng.randrange(len(subs))
        n = rng.choice([0, 1, 2, 4, len(subs[j]), 3 * len(subs[j]) + 1])
        raw = rng.choice([rng.randbytes(n), b"\x00" * n, b"\xff" * n])
        sizes = list(subs)
        sizes[j] = raw
        _set_lengths(seg, k, sizes)
        return seg.join(), f"payload p{k}.{j} replaced by {n} bytes {raw[:8].hex()}..., table fixed"
    if op == "resize":
        j = rng.randrange(len(subs))
        sizes = list(subs)
        n = rng.randrange(len(subs[j]) + 1)
        sizes[j] = subs[j][:n] if rng.random() < 0.6 else subs[j] + rng.randbytes(rng.randrange(1, 50))
        _set_lengths(seg, k, sizes)
        return seg.join(), f"payload p{k}.{j} resized to {len(sizes[j])}, table fixed"
    if op == "swap":
        other = rng.choice(seeds)
        if other["info"]["version"] < 2:
            return mutate_table(rng, seg, info, seeds)
        oseg = other["segments"]
        ok = min(k, int(oseg.get("count")[0]) - 1)
        _set_lengths(seg, k, [oseg.get(n) for n in oseg.names(f"p{ok}.")])
        return seg.join(), f"section {k} payload from seed {other['name']}"
    if op == "foreign":
        other = rng.choice(seeds)
        if other["info"]["version"] < 2:
            return mutate_table(rng, seg, info, seeds)
        oseg = other["segments"]
        head_fields = ["width", "height", "pad_right", "pad_bottom", "quality", "flags"]
        for name in rng.sample(head_fields, rng.randrange(1, len(head_fields) + 1)):
            seg.set(name, oseg.get(name))
        return seg.join(), f"header fields from seed {other['name']}"
    # drop a section (and its table entry), count kept or fixed
    count = int(seg.get("count")[0])
    seg.parts = [(n, v) for n, v in seg.parts if not n.startswith((f"s{k}.", f"p{k}."))]
    fixed = rng.random() < 0.7
    if fixed:
        seg.set("count", bytes([count - 1]))
    return seg.join(), f"section {k} dropped, count {'fixed' if fixed else 'kept'}"


def random_behind_magic(rng: random.Random, seg: Segments) -> tuple[bytes, str]:
    """Random bytes after the magic, or after a valid header prefix (CRC left to chance)."""
    kind = rng.randrange(3)
    n = rng.choice([0, 1, 4, 16, 60, 200, 1000])
    if kind == 0:
        return b"\x89LIC" + rng.randbytes(n), f"magic + {n} random bytes"
    if kind == 1:
        return b"\x89LIC" + bytes([rng.choice([1, 2])]) + rng.randbytes(n), f"magic + version + {n} random bytes"
    data = seg.join(False)
    head = sum(len(v) for _, v in seg.parts[: seg.index("crc")])
    cut = rng.randrange(5, head + 1)
    return data[:cut] + rng.randbytes(n), f"header prefix of {cut} + {n} random bytes"


def make_case(seeds: list[dict], seed: int, case: int) -> tuple[bytes, str]:
    """The bytes and description of case ``case`` of run ``seed`` (deterministic)."""
    rng = random.Random(seed * 1_000_003 + case)
    src = rng.choices(seeds, weights=[s["weight"] for s in seeds])[0]
    seg, info = src["segments"], src["info"]
    r = rng.random()
    if r < 0.02:
        data, what = seg.join(), "unmodified"
    elif r < 0.35:
        data, what = mutate_bytes(rng, seg)
    elif r < 0.55:
        data, what = mutate_header(rng, seg, info)
    elif r < 0.62:
        data, what = mutate_size(rng, seg, info)
    elif r < 0.95:
        data, what = mutate_table(rng, seg, info, seeds)
    else:
        data, what = random_behind_magic(rng, seg)
    return data, f"{src['name']}: {what}"


# --------------------------------------------------------------------------------------------
# Seed files
# --------------------------------------------------------------------------------------------

#: Encoded seeds: (model, crop width, crop height, quality, grayscale, weight).
ENCODED = [("walloc", 1, 1, 1.0, False, 3), ("walloc", 16, 8, 3.0, False, 4), ("walloc", 40, 24, 6.0, True, 2),
           ("walloc", 33, 31, 2.0, False, 2), ("hyperprior", 16, 8, 1.0, False, 3),
           ("hyperprior", 40, 24, 5.5, True, 2),
           # the context model: checkerboard sections y0a, y0b decoded in order
           ("walloc-cc", 16, 8, 1.0, False, 2), ("walloc-cc", 40, 24, 4.0, True, 2),
           # >= 2 * 65536 y values: y coded as several substreams (the parallel path); slower to decode
           ("walloc", 512, 352, 3.0, False, 1)]


def seed_files(encode: bool = True) -> list[tuple[str, bytes, int]]:
    """(name, bytes, weight) of the fixtures and of files encoded now (``encode``)."""
    out = [(p.name, p.read_bytes(), 1 if "_v1" in p.name else 2) for p in sorted(FIXTURES.glob("*_v[12]*.bin"))]
    if encode:
        import numpy as np
        from PIL import Image

        import codec
        from codec import zoo

        image = np.asarray(Image.open(ROOT / "codec" / "data" / "astronaut.png").convert("RGB"))
        names = {e.name: e for e in zoo.all_versions()}
        for model, w, h, q, gray, weight in ENCODED:
            if model not in names:
                continue
            top, left = min(100, image.shape[0] - h), min(200, image.shape[1] - w)
            crop = image[top:top + h, left:left + w]
            if gray:
                crop = np.ascontiguousarray(crop.mean(axis=2).astype(np.uint8))
            data = codec.encode(Image.fromarray(crop), model=str(names[model].path), quality=q)
            out.append((f"{model}_{w}x{h}_q{q:g}{'_gray' if gray else ''}", data, weight))
    return out


def prepare_seeds(files: list[tuple[str, bytes, int]]) -> list[dict]:
    """Segments and model facts (pad multiple, stream names, latent shapes) of each seed file."""
    from codec import bitstream, zoo

    seeds = []
    for name, data, weight in files:
        header, _ = bitstream.unpack(data)
        entry = zoo.find_version(header.model, header.weights_hash)
        net = zoo.load_model(entry)
        info = dict(version=header.version, pad_multiple=net.pad_multiple, stream_names=net.stream_names,
                    shapes=net.latent_shapes)
        seeds.append(dict(name=name, data=data, weight=weight, segments=split(data), info=info))
    return seeds


# --------------------------------------------------------------------------------------------
# The worker (child process) and the oracle
# --------------------------------------------------------------------------------------------

def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def worker_main(memory_limit: int) -> None:
    """Read length-prefixed cases on stdin, decode each, answer one JSON line on the real stdout."""
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # anything printed by the code under test goes to stderr
    import codec
    from codec import bitstream, zoo

    for entry in zoo.all_versions():  # warm up: load every model, decode every fixture
        zoo.load_model(entry)
    for _, data, _ in seed_files(encode=False):
        codec.decode(data)
    if memory_limit:
        limit = _vm_size() + memory_limit
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.write(b'{"ready": true}\n')
    stdin = sys.stdin.buffer
    while True:
        raw = stdin.read(4)
        if len(raw) < 4:
            return
        data = stdin.read(struct.unpack("<I", raw)[0])
        result: dict = {}
        try:
            image = codec.decode(data)
            header, _ = bitstream.unpack(data)
            result.update(status="ok", size=list(image.size), mode=image.mode,
                          expected=[header.width, header.height, "L" if header.grayscale else "RGB"])
        except BaseException as err:  # noqa: BLE001 - the oracle classifies every type
            import traceback

            result.update(status="error", type=type(err).__name__, module=type(err).__module__,
                          message=str(err)[:500], traceback=traceback.format_exc()[-3000:])
        result["rss_growth"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) * 1024
        out.write(json.dumps(result).encode() + b"\n")


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class Worker:
    """A persistent child process that decodes cases; restarted after a crash, hang or spike."""

    def __init__(self, memory_limit: int = MEMORY_LIMIT, nice: int = 0) -> None:
        self.memory_limit, self.nice = memory_limit, nice
        self.proc: subprocess.Popen | None = None
        self.restarts = 0

    def start(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--memory-limit", str(self.memory_limit)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=str(ROOT),
                                     preexec_fn=(lambda: os.nice(self.nice)) if self.nice else None)
        line = self._readline(600.0)
        if not line or not json.loads(line).get("ready"):
            self.stop()
            raise RuntimeError("decoder worker did not start")

    def _readline(self, wall: float, cpu: float | None = None) -> bytes | None:
        assert self.proc is not None and self.proc.stdout is not None
        t0, c0 = time.monotonic(), _cpu_seconds(self.proc.pid)
        while True:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.25)
            if ready:
                return self.proc.stdout.readline()
            if time.monotonic() - t0 > wall or (cpu is not None and _cpu_seconds(self.proc.pid) - c0 > cpu):
                return None

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    def run(self, data: bytes) -> dict:
        """The worker's answer for one case, or {"status": "crash" | "hang", ...}."""
        if self.proc is None or self.proc.poll() is not None:
            self.stop()
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        t0, c0 = time.monotonic(), _cpu_seconds(self.proc.pid)
        try:
            self.proc.stdin.write(struct.pack("<I", len(data)) + data)
            self.proc.stdin.flush()
            line = self._readline(HANG_WALL_S, HANG_CPU_S)
        except BrokenPipeError:
            line = b""
        if not line:  # b"": the worker closed its end (it died); None: out of time
            cpu = _cpu_seconds(self.proc.pid) - c0
            code = self.proc.poll()
            if line is not None and code is None:
                try:
                    code = self.proc.wait(timeout=HANG_WALL_S)
                except subprocess.TimeoutExpired:
                    pass
            self.stop()
            self.restarts += 1
            if code is not None:
                return dict(status="crash", returncode=code)
            return dict(status="hang", wall=round(time.monotonic() - t0, 2), cpu=round(cpu, 2))
        result = json.loads(line)
        if result.get("rss_growth", 0) > self.memory_limit // 2:
            self.stop()  # its peak RSS is spent: start the next case from a fresh baseline
            self.restarts += 1
        return result


def classify(result: dict, memory_limit: int = MEMORY_LIMIT) -> str | None:
    """None when the result meets the oracle, else the kind of finding."""
    status = result["status"]
    if status in ("crash", "hang"):
        return status
    if result.get("rss_growth", 0) > memory_limit:
        return "memory"
    if status == "ok":
        w, h, mode = result["expected"]
        return None if result["size"] == [w, h] and result["mode"] == mode else "wrong-output"
    if result["type"] == "MemoryError" or "not enough memory" in result.get("message", "") or \
            "can't allocate" in result.get("message", ""):
        return "memory"
    if result["type"] in DOCUMENTED and result["module"] == "codec.errors":
        return None
    return "exception"


def signature(kind: str, result: dict) -> str:
    """What makes two findings the same bug (for de-duplication)."""
    if kind == "exception":
        last = [ln for ln in result.get("traceback", "").splitlines() if ln.strip().startswith("File ")][-1:]
        return f"{kind}:{result['type']}:{last}"
    return kind


@dataclass
class Stats:
    cases: int = 0
    decoded: int = 0
    rejected: dict = field(default_factory=dict)
    findings: dict = field(default_factory=dict)


def record(stats: Stats, result: dict, kind: str | None) -> None:
    stats.cases += 1
    if kind is not None:
        stats.findings[kind] = stats.findings.get(kind, 0) + 1
    elif result["status"] == "ok":
        stats.decoded += 1
    else:
        # group rejections by the message's start (what check refused the file)
        key = re.sub(r"\d+", "#", re.split(r"[:'\"(]", result["message"])[0]).strip()[:50]
        stats.rejected[key] = stats.rejected.get(key, 0) + 1


def save_finding(out: Path, kind: str, data: bytes, meta: dict) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{kind}-{hashlib.sha256(data).hexdigest()[:12]}"
    (out / f"{stem}.bin").write_bytes(data)
    (out / f"{stem}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out / f"{stem}.bin"


def fuzz(seed: int, cases: int, minutes: float | None, out: Path, worker: Worker, seeds: list[dict],
         first: int = 0, log=None, max_saved_per_signature: int = 5) -> Stats:
    """Run cases ``first..first+cases`` (or until ``minutes``); returns counts and saves findings."""
    stats, seen = Stats(), {}
    t0 = time.monotonic()
    for case in range(first, first + cases):
        if minutes is not None and time.monotonic() - t0 > minutes * 60:
            break
        data, what = make_case(seeds, seed, case)
        result = worker.run(data)
        kind = classify(result, worker.memory_limit)
        record(stats, result, kind)
        if kind is not None:
            sig = signature(kind, result)
            seen[sig] = seen.get(sig, 0) + 1
            if seen[sig] <= max_saved_per_signature:
                path = save_finding(out, kind, data, dict(seed=seed, case=case, mutation=what, result=result))
                if log:
                    log(f"FINDING {kind} at case {case} ({what}): {result.get('type', '')} "
                        f"{result.get('message', '')[:200]} -> {path}")
        if log and (case + 1 - first) % 5000 == 0:
            rate = (case + 1 - first) / (time.monotonic() - t0)
            log(f"{case + 1 - first} cases, {rate:.1f}/s, decoded {stats.decoded}, findings {stats.findings}")
    return stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--minutes", type=float, default=None, help="stop after this long even if cases remain")
    ap.add_argument("--first", type=int, default=0, help="number of the first case (to resume a run)")
    ap.add_argument("--case", type=int, default=None, help="run this one case and print it")
    ap.add_argument("--replay", type=Path, default=None, help="decode this file in a worker and print the result")
    ap.add_argument("--out", type=Path, default=ROOT / ".cache" / "fuzz_decoder")
    ap.add_argument("--memory-limit", type=int, default=MEMORY_LIMIT, help=argparse.SUPPRESS)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker_main(args.memory_limit)
        return 0

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    worker = Worker(args.memory_limit)
    try:
        if args.replay is not None:
            result = worker.run(args.replay.read_bytes())
            print(json.dumps(dict(finding=classify(result, args.memory_limit), result=result), indent=1))
            return 0 if classify(result, args.memory_limit) is None else 1
        t0 = time.monotonic()
        seeds = prepare_seeds(seed_files())
        log(f"{len(seeds)} seed files ready in {time.monotonic() - t0:.1f}s: " + ", ".join(s["name"] for s in seeds))
        if args.case is not None:
            data, what = make_case(seeds, args.seed, args.case)
            result = worker.run(data)
            print(json.dumps(dict(case=args.case, mutation=what, bytes=data.hex(), finding=classify(result),
                                  result=result), indent=1))
            return 0 if classify(result) is None else 1
        t0 = time.monotonic()
        stats = fuzz(args.seed, args.cases, args.minutes, args.out, worker, seeds, args.first, log)
        elapsed = time.monotonic() - t0
    finally:
        worker.stop()
    rejected = ", ".join(f"{k!r}={v}" for k, v in sorted(stats.rejected.items(), key=lambda kv: -kv[1]))
    print(f"fuzz_decoder: {stats.cases} cases (seed {args.seed}, first {args.first}) in {elapsed:.0f}s "
          f"({stats.cases / max(elapsed, 1e-9):.1f}/s, worker restarts {worker.restarts}): decoded {stats.decoded}, "
          f"findings {stats.findings or 'none'}; rejections: {rejected}")
    return 1 if stats.findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
