#!/usr/bin/env python
"""One command for a GPU machine: what of the codec runs on the GPU, and how fast.

Stages (each reports PASS / FAIL / SKIP and never stops the others):
  1. environment: torch, the GPU, the compiled CPU range coder (built in place if missing)
     and the CUDA coder codec._cuda_rangecoder (built, its CUDA runtime, GPUs it sees);
  2. GPU tests: the test files with CUDA cases, run by pytest (when pytest is installed);
  3. cross-device files: every shipped model (and the retired ones, for information) encodes
     images on the CPU and on the GPU; every file is decoded on both, and must decode; the
     decoded pixels of the two devices are compared. The GPU-encoded files and the SHA-256 of
     their GPU-decoded pixels go into ``OUT/cross_device.zip``, so that another machine can
     decode them and compare (``python tools/gpu_check.py --verify OUT``);
  4. end-to-end throughput: megapixels per second of ``api.encode_tensor`` and
     ``api.decode_to_tensor`` on a batch of crops, GPU against CPU in the same run;
  5. encoder effort on the GPU: seconds and bytes of effort 1 and 2 against effort 0;
  6. CUDA coder: its bytes against the CPU coder's on random values (escapes, int32 extremes,
     empty substreams) and on real latents (walloc's y of the images), GPU round trips, corrupt
     substreams refused, and coder throughput in Msymbols/s (encode, decode), GPU and CPU in the
     same run on a 4K-sized latent;
  7. compute-sanitizer (memcheck) over a small coder script (``--coder-smoke``), when
     compute-sanitizer is on PATH or in the CUDA toolkit.

Images: the bundled sample plus up to ``--limit`` images of ``--images`` (any folder of
photographs; never Kodak for training, but any is fine here). Results: a summary on stdout and
``OUT/gpu_check.json``. Without a GPU every GPU stage says SKIP and the script exits 0.

Usage: python tools/gpu_check.py [--images DIR] [--limit N] [--out DIR] [--batch B]
       python tools/gpu_check.py --verify DIR     # decode another machine's files here
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import subprocess
import sys
import time
import traceback
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUALITIES = (1.0, 3.5, 6.0)
#: The device of the GPU stages; ``--dry-run`` sets "cpu" to exercise this script without a GPU.
GPU = "cuda"


def pixels_sha256(x) -> str:
    """SHA-256 of a decoded batch's 8-bit pixels."""
    return hashlib.sha256((x * 255).round().byte().cpu().numpy().tobytes()).hexdigest()


class Report:
    """Collects each stage's status, figures and messages; prints as it goes."""

    def __init__(self) -> None:
        self.stages: dict[str, dict] = {}

    def stage(self, name: str, status: str, **figures) -> None:
        self.stages[name] = {"status": status, **figures}
        shown = ", ".join(f"{k}={v}" for k, v in figures.items() if k != "details")
        print(f"[{status}] {name}" + (f": {shown}" if shown else ""), flush=True)


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def load_images(folder: str | None, limit: int) -> list:
    """The bundled sample and up to ``limit`` photographs of ``folder``, as [1, 3, H, W] tensors."""
    import numpy as np
    import torch
    from PIL import Image

    from codec.cli.roundtrip import sample_image

    paths = [Path(sample_image())]
    if folder:
        paths += sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})[:limit]
    images = []
    for p in paths:
        with Image.open(p) as im:
            rgb = np.asarray(im.convert("RGB"))
        images.append((p.name, torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255))
    return images


def importable(module: str) -> bool:
    """Whether ``module`` imports (a fresh check each time: it may have just been built)."""
    importlib.invalidate_caches()
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def stage_environment(report: Report) -> bool:
    import torch

    gpu = torch.cuda.is_available()
    if not importable("codec._rangecoder"):
        subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, check=False)
    coder = "built" if importable("codec._rangecoder") else "missing (setup.py build_ext failed)"
    from codec.entropy.cuda_coder import build_status

    cuda_coder = build_status()
    report.stage("environment", "PASS" if coder == "built" else "FAIL", torch=torch.__version__,
                 gpu=torch.cuda.get_device_name(0) if gpu else "none", cpu_coder=coder, cuda_coder=cuda_coder,
                 cpu_threads=torch.get_num_threads())
    return gpu


def stage_tests(report: Report) -> None:
    if not importable("pytest"):
        report.stage("gpu tests", "SKIP", reason="pytest is not installed")
        return
    files = ["tests/test_integer_parameters.py", "tests/test_batch.py", "tests/test_effort.py", "tests/test_cuda_coder.py"]
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *files, "-k",
                          "cuda or integer or device"], cwd=ROOT, capture_output=True, text=True)
    tail = (run.stdout + run.stderr).strip().splitlines()[-15:]
    report.stage("gpu tests", "PASS" if run.returncode == 0 else "FAIL", summary=tail[-1] if tail else "",
                 details=tail)


def stage_cross_device(report: Report, images: list, out: Path, entries: list | None = None,
                       qualities: tuple = QUALITIES) -> None:
    """Encode on both devices, decode every file on both; ``entries``: zoo entries (default: all)."""
    from codec import api, zoo

    # One archive: the device tool brings back few files, and none with "@" in its name.
    archive = zipfile.ZipFile(out / "cross_device.zip", "w")
    manifest = []
    for entry in zoo.all_versions() if entries is None else entries:
        retired = "@" in entry.path.stem
        failures, same_bytes, total, max_diff = [], 0, 0, 0.0
        for name, x in images:
            for q in qualities:
                q = min(max(q, entry.quality_range[0]), entry.quality_range[1])
                encoded = {}
                for dev in ("cpu", GPU):
                    try:
                        encoded[dev] = api.encode_tensor(x, str(entry.path), q, device=dev)[0]
                    except Exception as err:  # noqa: BLE001 - reported, not raised
                        failures.append(f"encode {name} q{q} on {dev}: {err}")
                if len(encoded) < len({"cpu", GPU}):
                    continue
                total += 1
                same_bytes += encoded["cpu"] == encoded[GPU]
                for enc_dev, data in encoded.items():
                    decoded = {}
                    for dec_dev in ("cpu", GPU):
                        try:
                            decoded[dec_dev] = api.decode_to_tensor([data], device=dec_dev, model=str(entry.path))
                        except Exception as err:  # noqa: BLE001
                            failures.append(f"{enc_dev} file of {name} q{q} decoded on {dec_dev}: {err}")
                    if len(decoded) == len({"cpu", GPU}):
                        max_diff = max(max_diff, float((decoded["cpu"] - decoded[GPU]).abs().max()) * 255)
                    if enc_dev == GPU and GPU in decoded:
                        member = f"{entry.path.stem}-{Path(name).stem}-q{q:g}.bin"
                        archive.writestr(member, data)
                        manifest.append({"file": member, "model": entry.path.name,
                                         "cuda_pixels_sha256": pixels_sha256(decoded[GPU])})
        status = "PASS" if not failures else ("INFO" if retired else "FAIL")
        report.stage(f"cross-device {entry.path.stem}" + (" (retired, float parameters)" if retired else ""),
                     status, pairs=total, identical_files=same_bytes, decode_failures=len(failures),
                     max_pixel_difference=round(max_diff, 3), details=failures[:10])
    archive.writestr("manifest.json", json.dumps(manifest, indent=1))
    archive.close()


def _crops(images: list, batch: int, height: int, width: int):
    import torch

    pool = [x[..., :height, :width] for _, x in images if x.shape[-2] >= height and x.shape[-1] >= width]
    if not pool:
        return None
    return torch.cat([pool[i % len(pool)] for i in range(batch)])


def stage_throughput(report: Report, images: list, batch: int) -> None:
    from codec import api

    x = _crops(images, batch, 320, 480)
    if x is None:
        report.stage("throughput", "SKIP", reason="no image of at least 320x480")
        return
    megapixels = x.shape[0] * x.shape[-2] * x.shape[-1] / 1e6
    figures = {"batch": f"{x.shape[0]} x {x.shape[-2]}x{x.shape[-1]}"}
    for dev in (GPU, "cpu"):
        api.decode_to_tensor(api.encode_tensor(x[:2], "walloc", 3.5, device=dev), device=dev)  # warm-up
        sync(dev)
        start = time.perf_counter()
        files = api.encode_tensor(x, "walloc", 3.5, device=dev)
        sync(dev)
        middle = time.perf_counter()
        api.decode_to_tensor(files, device=dev)
        sync(dev)
        end = time.perf_counter()
        figures[f"{dev}_encode_MPps"] = round(megapixels / (middle - start), 2)
        figures[f"{dev}_decode_MPps"] = round(megapixels / (end - middle), 2)
    report.stage("throughput walloc (CPU range coder)", "PASS", **figures)


def stage_effort(report: Report, images: list) -> None:
    from codec import api

    name, x = images[0]
    figures = {"image": f"{name} {x.shape[-1]}x{x.shape[-2]}"}
    base = None
    for effort in (0, 1, 2):
        start = time.perf_counter()
        data = api.encode_tensor(x, "walloc", 3.5, device=GPU, effort=effort)[0]
        sync(GPU)
        seconds = time.perf_counter() - start
        base = base or len(data)
        figures[f"effort{effort}"] = f"{seconds:.2f} s, {len(data)} B ({100 * (len(data) / base - 1):+.1f} %)"
    report.stage("effort on cuda (walloc q3.5)", "PASS", **figures)


def _walloc_latents(model, x, quality: float):
    """(symbols, indexes) of walloc's y of image x, 1-D int32, and the shape [C, H, W]: the
    scale indexes as the float path computes them (a coder workload, not a file)."""
    import torch

    from codec.entropy import compressai_models as cm

    with torch.inference_mode():
        x = x.to(GPU)
        y = model.g_a(x) * model.gains.gain(quality)
        z = model.h_a(y)
        z_hat = cm.decode_bottleneck(model.entropy_bottleneck, cm.encode_bottleneck(model.entropy_bottleneck, z),
                                     tuple(z.shape[-2:])).to(GPU)
        scales, means = model.h_s(z_hat).chunk(2, dim=1)
        gc = model.gaussian_conditional
        idx = cm.scale_indexes(gc, scales)
        sym = gc.quantize(y, "symbols", means).int()
    shape = tuple(sym.shape[1:])
    return (sym[0].reshape(-1).cpu().numpy().astype("int32"), idx[0].reshape(-1).cpu().numpy().astype("int32"), shape)


def _random_values(rng, lengths, offsets, n: int):
    """Values for random tables of walloc's set: mostly inside, 5 % escapes, 1 % int32 extremes."""
    import numpy as np

    idx = rng.integers(0, len(lengths), n).astype(np.int32)
    sym = offsets[idx].astype(np.int64) + rng.integers(0, lengths[idx].astype(np.int64) - 2)
    pick = rng.random(n)
    sym = np.where(pick < 0.05, offsets[idx] + rng.integers(-40, 40, n) * 1000, sym)
    sym = np.where(pick < 0.01, rng.choice([-(2**31), 2**31 - 1, -1, 0], n), sym)
    return sym.clip(-(2**31), 2**31 - 1).astype(np.int32), idx


def stage_cuda_coder(report: Report, images: list, repeat: int = 5) -> None:
    """The CUDA coder against the CPU coder: same bytes, round trips, throughput."""
    import numpy as np
    import torch

    from codec import zoo
    from codec.entropy import entropy_tables
    from codec.entropy import rangecoder as rc
    from codec.entropy.coders import coder_threads
    from codec.entropy.cuda_coder import build_status, cuda_available
    from codec.entropy.substreams import substream_rows

    if not cuda_available():
        report.stage("cuda coder", "SKIP", reason=build_status())
        return
    from codec import _cuda_rangecoder as ext

    model = zoo.load_model(zoo.model_entry("walloc")).to(GPU).eval()
    tables = entropy_tables(model.gaussian_conditional)
    cdfs, lengths, offsets = tables.cdfs, tables.cdf_lengths, tables.offsets
    dev_tables = [torch.from_numpy(np.ascontiguousarray(a)).to(GPU) for a in (cdfs, lengths, offsets)]
    failures: list[str] = []

    def check(label, sym, idx, bounds):
        s, i = torch.from_numpy(sym).to(GPU), torch.from_numpy(idx).to(GPU)
        cpu = rc.encode_substreams(sym, idx, cdfs, lengths, offsets, bounds, threads=coder_threads(len(bounds) - 1))
        gpu = ext.encode_substreams(s, i, *dev_tables, bounds)
        if gpu != cpu:
            bad = [j for j, (a, b) in enumerate(zip(gpu, cpu)) if a != b]
            failures.append(f"{label}: bytes differ in substreams {bad[:5]} of {len(cpu)}")
            return
        out = torch.empty_like(i)
        ext.decode_substreams(gpu, i, *dev_tables, bounds, out)
        if not np.array_equal(out.cpu().numpy(), sym):
            failures.append(f"{label}: GPU decode differs")
        if len(cpu) > 1 and len(cpu[1]) > 2:
            try:
                ext.decode_substreams([cpu[0], cpu[1][:2], *cpu[2:]], i, *dev_tables, bounds, out)
                failures.append(f"{label}: a truncated substream 1 was not refused")
            except ValueError as err:
                if not str(err).startswith("substream 1"):
                    failures.append(f"{label}: truncated substream 1 reported as {err}")

    rng = np.random.default_rng(0)
    randoms = 24
    for trial in range(randoms):
        n = int(rng.integers(0, 400_000))
        sym, idx = _random_values(rng, lengths, offsets, n)
        cuts = np.sort(rng.integers(0, n + 1, int(rng.integers(0, 200))))
        bounds = np.concatenate([[0], cuts, cuts[:3], [n]]) if trial % 2 else np.concatenate([[0], cuts, [n]])
        check(f"random case {trial} ({n} values)", sym, idx, np.sort(bounds).astype(np.int64))
    for name, x in images:
        sym, idx, shape = _walloc_latents(model, x, 3.5)
        check(f"{name} y {shape}", sym, idx, substream_rows(*shape))

    # Throughput on a 4K-sized latent: the first image upscaled to 2176 x 3840.
    x = torch.nn.functional.interpolate(images[0][1], size=(2176, 3840), mode="bicubic").clamp(0, 1)
    sym, idx, shape = _walloc_latents(model, x, 3.5)
    bounds = substream_rows(*shape)
    threads = coder_threads(len(bounds) - 1)
    s, i = torch.from_numpy(sym).to(GPU), torch.from_numpy(idx).to(GPU)
    out = torch.empty_like(i)
    strings = rc.encode_substreams(sym, idx, cdfs, lengths, offsets, bounds, threads=threads)

    def best(fn) -> float:
        fn()
        times = []
        for _ in range(repeat):
            torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return min(times)

    n = sym.size
    figures = {
        "random_cases": randoms, "real_latents": len(images), "failures": len(failures),
        "latent": f"{shape} = {n} values, {len(bounds) - 1} substreams, {sum(map(len, strings))} bytes",
        "gpu_encode_Msym_s": round(n / best(lambda: ext.encode_substreams(s, i, *dev_tables, bounds)) / 1e6, 2),
        "gpu_decode_Msym_s": round(n / best(lambda: ext.decode_substreams(strings, i, *dev_tables, bounds, out)) / 1e6, 2),
        f"cpu_encode_Msym_s_{threads}_threads": round(n / best(lambda: rc.encode_substreams(
            sym, idx, cdfs, lengths, offsets, bounds, threads=threads)) / 1e6, 2),
        f"cpu_decode_Msym_s_{threads}_threads": round(n / best(lambda: rc.decode_substreams(
            strings, idx, cdfs, lengths, offsets, bounds, threads=threads)) / 1e6, 2),
        "details": failures[:10],
    }
    report.stage("cuda coder (bytes vs CPU coder, throughput)", "PASS" if not failures else "FAIL", **figures)


def coder_smoke() -> int:
    """A small CUDA coder workload for compute-sanitizer: random and corrupt substreams."""
    import numpy as np
    import torch

    from codec import _cuda_rangecoder as ext
    from codec.entropy import rangecoder as rc

    rng = np.random.default_rng(1)
    lengths = np.array([3, 10, 40], np.int32)
    cdfs = np.zeros((3, 40), np.int32)
    for row, length in enumerate(lengths):
        cdfs[row, :length] = np.linspace(0, 65536, length).astype(np.int32)
    offsets = np.array([-1, -5, -20], np.int32)
    tables = [torch.from_numpy(a).cuda() for a in (cdfs, lengths, offsets)]
    for trial in range(20):
        n = int(rng.integers(0, 5000))
        sym, idx = _random_values(rng, lengths, offsets, n)
        bounds = np.concatenate([[0], np.sort(rng.integers(0, n + 1, 20)), [n]]).astype(np.int64)
        s, i = torch.from_numpy(sym).cuda(), torch.from_numpy(idx).cuda()
        strings = ext.encode_substreams(s, i, *tables, bounds)
        assert strings == rc.encode_substreams(sym, idx, cdfs, lengths, offsets, bounds)
        out = torch.empty_like(i)
        ext.decode_substreams(strings, i, *tables, bounds, out)
        assert np.array_equal(out.cpu().numpy(), sym)
        damaged = [bytes(rng.integers(0, 256, int(rng.integers(0, 12)), dtype=np.uint8)) for _ in strings]
        try:
            ext.decode_substreams(damaged, i, *tables, bounds, out)
        except ValueError:
            pass
    print("coder smoke: 20 cases OK")
    return 0


def stage_sanitizer(report: Report) -> None:
    """compute-sanitizer memcheck over ``--coder-smoke`` (SKIP without the tool or the module)."""
    import shutil

    from codec.entropy.cuda_coder import cuda_available

    tool = shutil.which("compute-sanitizer") or next(
        (p for p in ("/usr/local/cuda/bin/compute-sanitizer",) if os.path.exists(p)), None)
    if tool is None or not cuda_available():
        report.stage("compute-sanitizer", "SKIP",
                     reason="compute-sanitizer not found" if tool is None else "CUDA coder not available")
        return
    run = subprocess.run([tool, "--tool", "memcheck", "--error-exitcode", "1", sys.executable, __file__, "--coder-smoke"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    tail = (run.stdout + run.stderr).strip().splitlines()[-12:]
    report.stage("compute-sanitizer", "PASS" if run.returncode == 0 else "FAIL", summary=tail[-1] if tail else "",
                 details=tail)


def verify(folder: Path) -> int:
    """Decode another machine's GPU-encoded files (``FOLDER/cross_device.zip``) here and
    compare with the pixels that machine decoded; 1 if any file fails to decode."""
    from codec import api

    archive = zipfile.ZipFile(folder / "cross_device.zip")
    manifest = json.loads(archive.read("manifest.json"))
    bad = identical = 0
    for item in manifest:
        data = archive.read(item["file"])
        try:
            here = pixels_sha256(api.decode_to_tensor([data]))  # the weights named by the file's hash
        except Exception as err:  # noqa: BLE001
            print(f"FAIL {item['file']}: {err}")
            bad += 1
            continue
        same = here == item["cuda_pixels_sha256"]
        identical += same
        print(f"{'same pixels' if same else 'decoded, other pixels'}: {item['file']}")
    print(f"{len(manifest) - bad} of {len(manifest)} files decoded here, {identical} with the same pixels")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", help="a folder of photographs to use besides the bundled sample")
    parser.add_argument("--limit", type=int, default=4, help="images taken from --images (default 4)")
    parser.add_argument("--batch", type=int, default=32, help="crops per throughput batch (default 32)")
    parser.add_argument("--out", default=os.environ.get("OUT", "gpu_check_out"), help="results folder (default $OUT)")
    parser.add_argument("--dry-run", action="store_true", help="run the GPU stages on the CPU (tests this script)")
    parser.add_argument("--verify", type=Path, help="decode the files of an earlier run's --out here")
    parser.add_argument("--coder-smoke", action="store_true", help=argparse.SUPPRESS)  # run by compute-sanitizer
    args = parser.parse_args(argv)
    if args.coder_smoke:
        return coder_smoke()
    if args.verify:
        return verify(args.verify)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = Report()
    gpu = stage_environment(report)
    if args.dry_run:
        global GPU
        GPU, gpu = "cpu", True
    stages = [("gpu tests", lambda: stage_tests(report))]
    if gpu:
        images = load_images(args.images, args.limit)
        stages += [("cross-device", lambda: stage_cross_device(report, images, out)),
                   ("throughput", lambda: stage_throughput(report, images, args.batch)),
                   ("effort", lambda: stage_effort(report, images)),
                   ("cuda coder", lambda: stage_cuda_coder(report, images)),
                   ("compute-sanitizer", lambda: stage_sanitizer(report))]
    else:
        report.stage("GPU stages", "SKIP", reason="no CUDA GPU")
    for name, run in stages:
        try:
            run()
        except Exception:  # noqa: BLE001 - one stage's fault must not hide the others
            report.stage(name, "FAIL", details=traceback.format_exc().splitlines()[-6:])
    (out / "gpu_check.json").write_text(json.dumps(report.stages, indent=1))
    failed = [n for n, s in report.stages.items() if s["status"] == "FAIL"]
    print(f"gpu_check: {len(report.stages)} stages, {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
