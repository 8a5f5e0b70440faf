"""Batch coding: ``codec encode INPUT... -o OUTDIR`` and ``codec decode INPUT... -o OUTDIR`` (issue 9).

Every positional is an input: a file, or a folder whose matching files are taken (sorted,
not recursive, hidden files left out). Encode takes the image extensions Pillow registers
and writes ``OUTDIR/<stem>.bin``; decode takes ``*.bin`` and writes ``OUTDIR/<stem>.<format>``.

Everything that can be known before coding is checked before any file is coded (inputs
exist, none found, two inputs onto one output, an output that is an input, the output
folder, the model and quality), so a refused command writes nothing. Then each file is
coded on its own: a file that fails is reported at the end with its one-line error and the
others go on; every output is written atomically, so a failed file leaves no partial output.

``--jobs N`` (N > 1) codes files in N worker processes (a ``ProcessPoolExecutor``; see
:func:`worker_context` for how they start), each loading the model once in its initializer
and running torch with one intra-op thread, so the bytes and pixels are those of ``--jobs 1``
(which codes in this process, see :data:`codec.api.CPU_THREADS`). Ctrl-C starts no new file,
lets the files being coded finish, and exits with status 130.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from codec.cli._common import BITSTREAM_SUFFIX, STDIO, check_writable, count_of, read_bitstream, warn_if_lossy
from codec.errors import CodecWarning, InputError

#: Options that only mean something with ``-o OUTDIR`` (name as given on the command line, attribute).
BATCH_ONLY = {"--jobs": "jobs", "--skip-existing": "skip_existing", "--format": "format"}


def add_batch_options(parser, kind: str) -> None:
    """``-o OUTDIR``, ``--jobs`` and ``--skip-existing`` (and ``--format`` for decode)."""
    taken = "image files (by extension, any Pillow knows)" if kind == "encode" else "*.bin files"
    written = "<stem>.bin" if kind == "encode" else "<stem>.png (or --format)"
    parser.add_argument("-o", "--output-dir", dest="output_dir", metavar="OUTDIR", default=None,
                        help=f"batch mode: every positional is an input (a file, or a folder whose {taken} "
                             f"are taken, sorted, not recursive, hidden files left out); each is written to "
                             f"OUTDIR/{written}. OUTDIR is created if missing (its parent must exist). Two "
                             "inputs with the same output name, or an output that is an input, are refused "
                             "before any work. A file that fails is listed at the end (exit status 1); the "
                             "others are still written. The total's files/s is over the whole run, model "
                             "loading included")
    parser.add_argument("-j", "--jobs", type=count_of("jobs", "--jobs"), default=None, metavar="N",
                        help="batch mode: code N files at once in N worker processes, each loading the model "
                             "once and using one torch thread (default 1: in this process). Output bytes do "
                             "not depend on N")
    parser.add_argument("--skip-existing", action="store_true",
                        help="batch mode: leave outputs that already exist untouched (by default they are "
                             "overwritten; every output is written atomically, so an existing one is complete)")
    if kind == "decode":
        parser.add_argument("--format", default=None, metavar="EXT",
                            help="batch mode: image format of the outputs, by extension: png (default), bmp, "
                                 "tif, webp, ... (use a lossless one to keep the decoded pixels)")


def dispatch(command: str, args, code_one: Callable[..., int], what: str) -> int:
    """Run ``codec encode|decode``: the batch form with ``-o OUTDIR``, else ``code_one(args)``
    on exactly ``INPUT OUTPUT``. ``what`` names the inputs in the usage error."""
    if args.output_dir is not None:
        return run_batch(command, args.paths, args.output_dir, model=args.model, quality=getattr(args, "quality", None),
                         device=args.device, jobs=args.jobs, skip_existing=args.skip_existing,
                         fmt=getattr(args, "format", None), effort=getattr(args, "effort", 0),
                         tile=getattr(args, "tile", None))
    if len(args.paths) != 2:
        args.parser.error(f"give INPUT OUTPUT, or -o OUTDIR to {command} several {what}"
                          if len(args.paths) > 2 else "the following arguments are required: OUTPUT")
    refuse_batch_options(args)
    args.input, args.output = args.paths
    return code_one(args)


def refuse_batch_options(args) -> None:
    """A usage error (exit status 2) when a batch-only option is given in the single-file form."""
    for option, attribute in BATCH_ONLY.items():
        if getattr(args, attribute, None) not in (None, False):
            args.parser.error(f"{option} needs -o OUTDIR (batch mode); "
                              "without -o the command codes one INPUT into one OUTPUT")


# -- planning: every check before any work --------------------------------------------------------------------------

@dataclass(frozen=True)
class Task:
    """One file to code: where it is read from and written to."""

    source: str
    target: str


def image_extensions() -> set[str]:
    """Lower-case extensions (with the dot) of every format Pillow registers."""
    from PIL import Image

    return set(Image.registered_extensions())


def collect_inputs(paths: Sequence[str], extensions: set[str], what: str) -> list[str]:
    """The input files: each file as given, each folder's files with one of ``extensions``
    (lower-cased), sorted by name, not recursive, hidden (dot) files left out."""
    files: list[str] = []
    for path in paths:
        if path == STDIO:
            raise InputError("'-' (standard input) cannot be used with -o OUTDIR; give files or folders")
        if os.path.isdir(path):
            from codec.fileio import list_images

            files.extend(os.path.join(path, p.name) for p in list_images(path, suffixes=extensions))
        elif os.path.exists(path):
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    if not files:
        raise InputError(f"no {what} found in {', '.join(paths)}")
    return files


def plan(inputs: Sequence[str], outdir: str, suffix: str) -> list[Task]:
    """Map every input onto ``outdir/<stem><suffix>``, refusing clashes before any work."""
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise InputError(f"output folder {out} is a file")
    if not out.exists() and not out.parent.is_dir():
        raise InputError(f"output folder {out}: its parent {out.parent} does not exist")
    if not out.exists() and out.suffix.lower() in image_extensions() | {BITSTREAM_SUFFIX}:
        raise InputError(f"-o names an output folder, and {out} looks like a file name: to code one file, "
                         f"give INPUT OUTPUT without -o")
    tasks: list[Task] = []
    by_target: dict[str, str] = {}
    for source in inputs:
        target = str(out / (Path(source).stem + suffix))
        key = os.path.normcase(os.path.abspath(target))
        if key in by_target:
            other = by_target[key]
            if os.path.samefile(other, source):
                also = "" if other == source else f" (also as {other})"
                raise InputError(f"{source} is given twice{also}")
            raise InputError(f"{other} and {source} would both be written to {target}; "
                             "code them into different folders")
        by_target[key] = source
        tasks.append(Task(source, target))
    identities = {_identity(t.source): t.source for t in tasks}
    for task in tasks:
        target = Path(task.target)
        if target.is_dir():
            raise InputError(f"output {target} is a folder")
        if target.exists() and _identity(task.target) in identities:
            raise InputError(f"output {target} is the input file {identities[_identity(task.target)]}; "
                             "choose another output folder")
    return tasks


def _identity(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def make_outdir(outdir: str) -> bool:
    """Create the output folder (not its parents) once every check has passed; True if created."""
    try:
        os.mkdir(outdir)
    except FileExistsError:
        if not os.path.isdir(outdir):
            raise InputError(f"output folder {outdir} is a file") from None
        check_writable(outdir)
        return False
    return True


def check_model(model: str | None, quality: float | None) -> None:
    """Refuse an unknown model, an unusable weights file's metadata, or a quality out of its
    range, before any work (reads the weights file's header only: no torch)."""
    if model is None:
        return
    from codec import zoo

    entry = zoo.entry_for(model)
    if isinstance(quality, (int, float)):  # else None, or a rate-control target
        zoo.check_quality(quality, entry.quality_range, entry.name)


# -- the work, in this process (--jobs 1) or in worker processes ---------------------------------------------------

@dataclass
class Outcome:
    """What coding one file gave: the numbers of its summary line, or its one-line error."""

    task: Task
    error: str | None = None
    setup_error: str | None = None  # the worker could not load the model: no file can be coded
    bitstream_bytes: int = 0
    width: int = 0
    height: int = 0
    mode: str = ""
    output_bytes: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def bpp(self) -> float:
        return self.bitstream_bytes * 8 / (self.width * self.height)


#: Per-process state set by :func:`setup`: the network, quality, device, output format, effort, tile, or the setup error.
_state: dict = {}


def setup(command: str, model: str | None, quality: float | None, device: str, fmt: str | None,
          effort: int, tile: tuple[int, int] | None, in_worker: bool) -> None:
    """Load the model once for this process. In a worker: one torch thread, Ctrl-C left to
    the main process (which lets the files being coded finish, so no partial output), and a
    failure kept to be reported by the first task instead of breaking the pool."""
    _state.clear()
    if in_worker:
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import torch

        from codec import api
        from codec.band_pool import set_band_threads

        if in_worker:
            torch.set_num_threads(1)
            set_band_threads(1)  # the jobs use the cores
        api.check_device(device)
        net = api.resolve_model(model, device) if model is not None else None
        _state.update(command=command, net=net, quality=quality, device=device, format=fmt, effort=effort, tile=tile)
    except Exception as err:  # noqa: BLE001 - reported as one line by the main process
        if not in_worker:
            raise
        _state["setup_error"] = one_line(err)


def one_line(err: BaseException, path: str | None = None) -> str:
    """An exception as one line, without a leading ``path:`` the listing already shows."""
    from codec.errors import CodecError

    text = str(err) if isinstance(err, (CodecError, OSError)) else f"{type(err).__name__}: {err}"
    text = " ".join(text.split()) or type(err).__name__
    if path is not None and text.startswith(f"{path}: "):
        text = text[len(path) + 2:]
    return text


def code_file(task: Task) -> Outcome:
    """Encode or decode one file (as :func:`setup` said) and write its output atomically."""
    if "setup_error" in _state:
        return Outcome(task, setup_error=_state["setup_error"])
    start = time.perf_counter()
    outcome = Outcome(task)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CodecWarning)
            try:
                (_encode if _state["command"] == "encode" else _decode)(task, outcome)
            finally:
                recorded = list(caught)
        for w in recorded:
            if issubclass(w.category, CodecWarning):
                outcome.warnings.append(str(w.message))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    except Exception as err:  # noqa: BLE001 - one bad file must not stop the others
        outcome.error = one_line(err, task.source)
    outcome.seconds = time.perf_counter() - start
    return outcome


def _encode(task: Task, outcome: Outcome) -> None:
    from codec import api, bitstream
    from codec.fileio import atomic_write

    data = api.encode(task.source, model=_state["net"], quality=_state["quality"], device=_state["device"],
                      effort=_state["effort"], tile=_state["tile"])
    atomic_write(task.target, lambda tmp: Path(tmp).write_bytes(data))
    header, _ = bitstream.unpack(data)
    outcome.bitstream_bytes = outcome.output_bytes = len(data)
    outcome.width, outcome.height, outcome.mode = header.width, header.height, "L" if header.grayscale else "RGB"


def _decode(task: Task, outcome: Outcome) -> None:
    from codec import api
    from codec.fileio import atomic_write

    data = read_bitstream(task.source)
    image = api.decode(data, device=_state["device"], model=_state["net"], tile=_state["tile"])
    atomic_write(task.target, lambda tmp: image.save(tmp, format=_state["format"]))
    outcome.bitstream_bytes = len(data)
    outcome.output_bytes = os.path.getsize(task.target)
    outcome.width, outcome.height, outcome.mode = image.width, image.height, image.mode


# -- the command ---------------------------------------------------------------------------------------------------

def summary_line(command: str, outcome: Outcome) -> str:
    task = outcome.task
    if command == "encode":
        what = f"{outcome.bitstream_bytes} bytes, {outcome.bpp:.4f} bpp ({outcome.width}x{outcome.height})"
    else:
        what = (f"{outcome.width}x{outcome.height} {outcome.mode}, {outcome.output_bytes} bytes "
                f"(from {outcome.bitstream_bytes} bytes, {outcome.bpp:.4f} bpp)")
    return f"{task.source} -> {task.target}: {what}, {outcome.seconds:.2f} s"


def run_batch(command: str, paths: Sequence[str], outdir: str, *, model: str | None, quality: float | None,
              device: str, jobs: int | None, skip_existing: bool, fmt: str | None = None, effort: int = 0,
              tile: tuple[int, int] | None = None) -> int:
    """The whole batch command; returns the exit status (1 when any file failed)."""
    from codec.image_io import image_format

    if command == "encode":
        inputs = collect_inputs(paths, image_extensions(), "image files")
        suffix = BITSTREAM_SUFFIX
    else:
        inputs = collect_inputs(paths, {BITSTREAM_SUFFIX}, f"{BITSTREAM_SUFFIX} files")
        suffix = "." + (fmt or "png").lower().lstrip(".")
        try:
            fmt = image_format("output" + suffix)
        except InputError as err:
            raise InputError(f"--format {suffix[1:]}: {str(err).split(': ', 1)[1]}") from None
    tasks = plan(inputs, outdir, suffix)
    if command == "decode":
        warn_if_lossy(command, fmt)
    check_model(model, quality)
    exists = {t for t in tasks if skip_existing and os.path.exists(t.target)}
    skipped = [t for t in tasks if t in exists]
    todo = [t for t in tasks if t not in exists]
    created = make_outdir(outdir)
    for task in skipped:
        print(f"{task.source}: skipped, {task.target} exists")

    start = time.perf_counter()
    try:
        outcomes = _code_all(command, todo, (command, model, quality, device, fmt, effort, tile), jobs or 1)
    except BaseException:
        if created:  # the model could not be loaded (or Ctrl-C) before any output: leave no empty folder
            with contextlib.suppress(OSError):
                os.rmdir(outdir)
        raise
    elapsed = time.perf_counter() - start

    done = [o for o in outcomes if o.error is None]
    order = {task: i for i, task in enumerate(todo)}
    failed = sorted((o for o in outcomes if o.error is not None), key=lambda o: order[o.task])
    verb = "encoded" if command == "encode" else "decoded"
    total = f"{verb} {len(done)} file{'s' if len(done) != 1 else ''}"
    if done:
        in_or_out = "" if command == "encode" else " read"
        total += (f": {sum(o.bitstream_bytes for o in done)} bytes{in_or_out}, "
                  f"mean {sum(o.bpp for o in done) / len(done):.4f} bpp")
    total += f", {len(done) / elapsed if elapsed > 0 else 0:.2f} files/s ({elapsed:.2f} s, jobs {jobs or 1})"
    if skipped:
        total += f"; {len(skipped)} skipped (output exists)"
    if failed:
        total += f"; {len(failed)} failed"
    print(total)
    if failed:
        print(f"codec {command}: error: {len(failed)} of {len(todo)} files failed:", file=sys.stderr)
        for o in failed:
            print(f"  {o.task.source}: {o.error}", file=sys.stderr)
        return 1
    return 0


def _code_all(command: str, tasks: list[Task], setup_args: tuple, jobs: int) -> list[Outcome]:
    from tqdm import tqdm

    outcomes: list[Outcome] = []
    bar = tqdm(total=len(tasks), desc=command, unit="file", file=sys.stderr, disable=None, leave=False)

    def report(outcome: Outcome) -> None:
        if outcome.setup_error is not None:
            raise InputError(outcome.setup_error)
        for message in outcome.warnings:
            tqdm.write(f"codec {command}: warning: {outcome.task.source}: {message}", file=sys.stderr)
        if outcome.error is None:
            tqdm.write(summary_line(command, outcome), file=sys.stdout)
        outcomes.append(outcome)
        bar.update()

    try:
        if not tasks:
            return outcomes
        if jobs == 1:
            setup(*setup_args, in_worker=False)
            for task in tasks:
                report(code_file(task))
        else:
            _in_workers(tasks, setup_args, min(jobs, len(tasks)), report)
    finally:
        bar.close()
    return outcomes


def worker_context():
    """How worker processes start. Not a plain fork of this process: torch's thread pools (and
    CUDA) do not survive a fork once used. Where available, a fork server that has imported
    :mod:`codec.api` (torch included, no op run, so nothing to break) forks the workers, so
    the import, seconds of CPU, is paid once instead of once per worker; elsewhere spawn."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["codec.api"])
    return context


def _in_workers(tasks: list[Task], setup_args: tuple, jobs: int, report: Callable[[Outcome], None]) -> None:
    import concurrent.futures as cf

    pool = cf.ProcessPoolExecutor(jobs, mp_context=worker_context(), initializer=setup, initargs=(*setup_args, True))
    futures: dict = {}
    reported = set()
    try:
        futures = {pool.submit(code_file, task): task for task in tasks}
        for future in cf.as_completed(futures):
            reported.add(future)
            try:
                outcome = future.result()
            except Exception as err:  # noqa: BLE001 - a worker died (killed, out of memory)
                outcome = Outcome(futures[future], error=f"worker process failed: {one_line(err)}")
            report(outcome)
    except BaseException as err:
        # Ctrl-C or a setup error: start nothing new, let the files being coded finish
        # (workers ignore SIGINT), so that no output is left half written, and list those
        # that were written meanwhile.
        if isinstance(err, KeyboardInterrupt) and any(f.running() for f in futures):
            print("codec: interrupted; finishing the files being coded", file=sys.stderr)
        pool.shutdown(wait=True, cancel_futures=True)
        for future in futures:
            if future not in reported and future.done() and not future.cancelled() and future.exception() is None:
                with contextlib.suppress(Exception):
                    report(future.result())
        raise
    pool.shutdown(wait=True)
