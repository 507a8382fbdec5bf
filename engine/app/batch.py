"""`simnet batch`: one region manipulation applied to many layers or files.

Inputs: an OpenRaster file (every chosen paint layer), a folder of images, or a JSON Lines job
file (one job per line). The edit: the same source/target masks or region maps for every input
(at the canvas size), or per-layer/per-file maps found by name in --maps-dir
(`NAME.regions.png` and `NAME.target.png`), or one solved edit (engine.replay) replayed on every
input: saved with `simnet manipulate --save-edit` (--apply-edit, resampled to each input's size),
or solved once here on the .ora's visible picture or on one of its layers (--together,
--solve-on), so that every layer moves alike. Each job runs the engine in-process; --jobs N runs N
processes, --ray ADDRESS sends jobs to an existing Ray cluster (inputs and outputs must be on a
filesystem the nodes share).

The whole batch is planned before anything runs (`check_plan`): an output that is any job's
input (the same path, a link to it, or a hard link: same device and inode), two jobs with one
output, and ids whose reports would collide are refused, naming both jobs, before a file is
written.

Each job writes its output atomically and then, from the same process, its JSON report (status,
timings, error) into the report folder, under a name made from its id that never leaves that
folder; --resume skips the jobs whose report says done and whose output exists, and first removes
the temporaries that a killed run left beside its outputs (engine.files). A failed job is reported
and the batch goes on. Pool processes die with the batch. For an .ora the finished layers are
gathered into a new .ora (each result above its source, or replacing it in the copy with
--replace); the file is parsed once per process, only the chosen layers are decoded, and the input
file is never written.
"""

from __future__ import annotations

import ctypes
import fnmatch
import hashlib
import json
import os
import re
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from .. import replay
from ..errors import InputError
from ..io import imageio
from ..io.files import remove_stale_temporaries, write_bytes_atomically
from ..io.pixels import rgb_channels
from ..progress import progress_bar
from .memory import keep_freed_memory

MAP_SUFFIXES = (".regions.png", ".target.png")


@dataclass(frozen=True)
class Job:
    """One manipulation. exemplar: an image file, or an .ora with `layer` (its index in the
    stack); the edit: `regions` + `target` (colour maps), `source_mask` + `target_mask`, or a
    solved edit to replay (`solved_edit`, an .npz from engine.replay)."""

    id: str
    exemplar: str
    output: str
    layer: int | None = None
    regions: str | None = None
    target: str | None = None
    source_mask: str | None = None
    target_mask: str | None = None
    model: str | None = None
    solved_edit: str | None = None


@dataclass(frozen=True)
class EditFiles:
    regions: Path | None = None
    target: Path | None = None
    source_mask: Path | None = None
    target_mask: Path | None = None
    maps_dir: Path | None = None
    solved_edit: Path | None = None

    def for_name(self, name: str) -> dict:
        """The edit for the input called `name`: the solved edit when there is one, its own maps
        from maps_dir when there, else the shared edit."""
        if self.solved_edit is not None:
            return {"solved_edit": str(self.solved_edit)}
        if self.maps_dir is not None:
            own = [self.maps_dir / f"{name}{suffix}" for suffix in MAP_SUFFIXES]
            if all(p.exists() for p in own):
                return {"regions": str(own[0]), "target": str(own[1])}
        if self.regions and self.target:
            return {"regions": str(self.regions), "target": str(self.target)}
        if self.source_mask and self.target_mask:
            return {"source_mask": str(self.source_mask), "target_mask": str(self.target_mask)}
        raise InputError(
            f"no edit for '{name}': give --regions and --target, or --source-mask and --target-mask, "
            f"or put {name}.regions.png and {name}.target.png in --maps-dir"
        )


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "layer"


_PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def report_name(job_id: str) -> str:
    """The report's file name for a job id: the id itself when it is a plain file name, else
    its safe form and a hash of the id after a `~` (which plain names never hold), so that no id
    can leave the report folder and two ids never share a report."""
    if _PLAIN_ID.fullmatch(job_id):
        return f"{job_id}.json"
    digest = hashlib.sha256(job_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{safe_name(job_id).lstrip('.')[:80] or 'job'}~{digest}.json"


def job_inputs(job: Job) -> list[str]:
    return [p for p in (job.exemplar, job.regions, job.target, job.source_mask, job.target_mask, job.solved_edit) if p]


def _identity(path: str | os.PathLike) -> tuple[str, tuple[int, int] | None]:
    """The path with every link resolved, and the file's (device, inode) if it exists."""
    real = os.path.realpath(path)
    try:
        info = os.stat(real)
    except OSError:
        return real, None
    return real, (info.st_dev, info.st_ino)


def check_plan(jobs: list[Job], reports: Path, inputs: Sequence[Path] = (), outputs: Sequence[Path] = ()) -> None:
    """Refuse a batch that would write over something it reads, or write one file twice, before
    anything runs. `inputs` and `outputs`: files the batch reads or writes besides the jobs' own
    (the JSONL file, the assembled .ora)."""
    read: dict = {}  # real path or (device, inode) -> who reads it
    for job in jobs:
        for path in job_inputs(job):
            real, inode = _identity(path)
            read.setdefault(real, (job, path))
            if inode:
                read.setdefault(inode, (job, path))
    for given in inputs:
        real, inode = _identity(given)
        read.setdefault(real, (None, str(given)))
        if inode:
            read.setdefault(inode, (None, str(given)))
    written: dict = {}

    def claim(path, job: Job | None, what: str) -> None:
        real, inode = _identity(path)
        for key in filter(None, (real, inode)):
            if key in read:
                reader, source = read[key]
                whose = f"job '{reader.id}'" if reader else "the batch"
                raise InputError(f"{_who(job)} would write {what} {path}, which is {source}, an input of {whose}: "
                                 "choose another output, the inputs are never written")
            if key in written:
                other, other_path = written[key]
                raise InputError(f"{_who(other)} and {_who(job)} would both write {path}"
                                 + (f" (also named {other_path})" if str(other_path) != str(path) else "")
                                 + ": give every job its own output")
            written[key] = (job, path)

    for job in jobs:
        claim(job.output, job, "its output")
    for output in outputs:
        claim(output, None, "the output")
    names: dict[str, Job] = {}
    for job in jobs:
        name = report_name(job.id)
        if name in names:
            raise InputError(f"{_who(names[name])} and {_who(job)} would share the report {reports / name}: "
                             "give the jobs different ids")
        names[name] = job
        claim(reports / name, job, "its report")


def _who(job: Job | None) -> str:
    if job is None:
        return "the batch"
    source = f" ({job.exemplar}" + (f", layer {job.layer})" if job.layer is not None else ")")
    return f"job '{job.id}'{source}"


def plan_folder(folder: Path, out: Path, edit: EditFiles, model: str | None) -> list[Job]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in imageio.READ_SUFFIXES
                   and not any(p.name.endswith(s) for s in MAP_SUFFIXES))
    if not files:
        raise InputError(f"no images in {folder}")
    return [Job(id=p.stem, exemplar=str(p), output=str(out / f"{p.stem}.png"), model=model, **edit.for_name(p.stem))
            for p in files]


def plan_ora(path: Path, out: Path, edit: EditFiles, model: str | None, patterns: list[str], visible_only: bool) -> list[Job]:
    document = ora_document(path)
    parts = parts_folder(out)
    jobs = []
    for index, layer in enumerate(document.layers):
        if patterns and not any(fnmatch.fnmatchcase(layer.name, p) for p in patterns):
            continue
        if visible_only and not layer.visible:
            continue
        job_id = f"{index:03d}_{safe_name(layer.name)}"
        jobs.append(Job(id=job_id, exemplar=str(path), layer=index, output=str(parts / f"{job_id}.png"), model=model,
                        **edit.for_name(layer.name)))
    if not jobs:
        raise InputError(f"no layer of {path.name} matches the layer choice")
    return jobs


def plan_jsonl(path: Path) -> list[Job]:
    jobs = []
    known = set(Job.__dataclass_fields__)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path.name} is not UTF-8 text: {error}") from None
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            values = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as error:
            raise InputError(f"{path.name} line {number} is not JSON: {error}") from None
        if not isinstance(values, dict):
            raise InputError(f"{path.name} line {number} is not a JSON object")
        unknown = set(values) - known
        if unknown or "exemplar" not in values or "output" not in values:
            raise InputError(f"{path.name} line {number}: needs exemplar and output; unknown keys: {sorted(unknown) or 'none'}")
        _check_job_types(values, f"{path.name} line {number}")
        base = path.parent
        # absolute, links kept: check_plan compares what they point to, messages name them as given
        resolved = {k: os.path.abspath(base / v) if k not in ("id", "model", "layer") and isinstance(v, str) else v
                    for k, v in values.items()}
        resolved.setdefault("id", f"line{number:05d}")
        if resolved["id"] in lines:
            raise InputError(f"{path.name}: lines {lines[resolved['id']]} and {number} have the same id "
                             f"{resolved['id'][:100]!r}: job ids must be unique")
        lines[resolved["id"]] = number
        jobs.append(Job(**resolved))  # type: ignore[arg-type]  # _check_job_types checked each field
    if not jobs:
        raise InputError(f"{path.name} holds no jobs")
    return jobs


def _check_job_types(values: dict, where: str) -> None:
    for key, value in values.items():
        if key == "layer":
            if value is not None and (type(value) is not int or not 0 <= value < 1 << 20):
                raise InputError(f"{where}: layer must be a layer index (a whole number from 0)")
        elif value is None and key in ("id", "exemplar", "output"):
            raise InputError(f"{where}: {key} must be given as text")
        elif value is not None and not isinstance(value, str):
            raise InputError(f"{where}: {key} must be text, not {type(value).__name__}")
        elif key in ("exemplar", "output") and not value:
            raise InputError(f"{where}: {key} is empty")
        elif key == "id" and not 1 <= len(str(value)) <= 1000:
            raise InputError(f"{where}: id must be 1 to 1000 characters")


def parts_folder(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def run_job(job: Job, reports: Path | None = None) -> dict:
    """Run one job; never raises. Writes its report into `reports` (right after its output, from
    this process, so a kill never leaves a finished output unreported) and returns it."""
    from ..pipeline import run

    started = time.perf_counter()
    timings = {}
    report = {"id": job.id, "job": asdict(job)}
    try:
        icc_profile = None
        if job.layer is not None:
            document = ora_document(Path(job.exemplar))
            if job.layer >= len(document.layers):
                raise InputError(f"{job.exemplar} has no layer {job.layer}")
            layer = document.layers[job.layer]
            pixels, bit_depth = layer.placed(document.width, document.height), 8
        else:
            picture = imageio.read_image(job.exemplar)
            pixels, bit_depth, icc_profile = picture.pixels, picture.bit_depth, picture.icc_profile
        timings["read"] = time.perf_counter() - started
        mark = time.perf_counter()
        if job.solved_edit:
            if job.regions or job.target or job.source_mask or job.target_mask:
                raise InputError("the job gives both a solved edit and maps or masks: it replays one or solves the other")
            result = replay.apply(replay.resized(_solved_edit(Path(job.solved_edit)), *pixels.shape[:2]), pixels)
        else:
            result = run(pixels, _job_edit(job, pixels.shape[:2]), model=job.model or None).pixels
        timings["manipulate"] = time.perf_counter() - mark
        mark = time.perf_counter()
        output = Path(job.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        imageio.write_image(output, result, bit_depth if output.suffix.lower() in (".png", ".tif", ".tiff") else 8,
                            icc_profile)
        timings["write"] = time.perf_counter() - mark
        report.update(status="done", output=str(output))
    except InputError as error:
        report.update(status="failed", error=str(error))
    except Exception as error:  # an engine bug: the batch goes on, the report keeps the details
        report.update(status="failed", error=f"internal error: {type(error).__name__}: {error}",
                      details=traceback.format_exc(limit=8))
    timings["total"] = time.perf_counter() - started
    report["seconds"] = timings
    if reports is not None:
        write_report(reports, report)
    return report


def _job_edit(job: Job, shape: tuple[int, int]):
    from ..edit import from_colour_maps, from_masks

    if job.regions and job.target:
        return from_colour_maps(imageio.read_rgb8(job.regions), imageio.read_rgb8(job.target))
    if job.source_mask and job.target_mask:
        return from_masks(shape, imageio.read_mask(job.source_mask), imageio.read_mask(job.target_mask))
    raise InputError("the job has no edit (regions + target, source_mask + target_mask, or solved_edit)")


def _read_once(cache: dict, path: Path, read):
    """`read(path)`, once per process while the file stays the same (its path, size and time):
    `cache` keeps the last file read."""
    try:
        info = path.stat()
    except OSError:
        raise InputError(f"{path} does not exist") from None
    key = (str(path.resolve()), info.st_size, info.st_mtime_ns)
    if key not in cache:
        cache.clear()
        cache[key] = read(path)
    return cache[key]


_solved_edits: dict[tuple, replay.SolvedEdit] = {}


def _solved_edit(path: Path) -> replay.SolvedEdit:
    """The solved edit in `path`, read once per process."""
    return _read_once(_solved_edits, path, replay.load)


def solve_together(source: Path, edit: EditFiles, model: str | None, solve_on: str | None, out: Path) -> Path:
    """Solve the shared edit once on the .ora's visible picture, or on its layer named `solve_on`,
    and save it to `out` for every layer's job to replay (returns `out`)."""
    from ..io.ora import flatten
    from ..pipeline import solve

    document = ora_document(source)
    if solve_on is None:
        pixels = flatten(document)
    else:
        named = [layer for layer in document.layers if layer.name == solve_on]
        if not named:
            raise InputError(f"{source.name} has no layer named {solve_on!r}; its layers: "
                             + ", ".join(repr(layer.name) for layer in document.layers[:20]))
        pixels = named[0].placed(document.width, document.height)
    shared = EditFiles(edit.regions, edit.target, edit.source_mask, edit.target_mask)
    job = Job(id="solve", exemplar=str(source), output=str(out), **shared.for_name(solve_on or "the picture"))
    out.parent.mkdir(parents=True, exist_ok=True)
    replay.save(solve(pixels, _job_edit(job, pixels.shape[:2]), model), out)
    return out


_documents: dict[tuple, object] = {}


def ora_document(path: Path):
    """The .ora's document, parsed once per process while the file stays the same (planning,
    every job and the assembly share it; layers are decoded only when used)."""
    from ..io.ora import read_ora

    return _read_once(_documents, path, read_ora)


def write_report(folder: Path, report: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(folder / report_name(report["id"]), json.dumps(report, indent=1).encode())


def finished(folder: Path, job: Job) -> bool:
    path = folder / report_name(job.id)
    try:
        report = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return report.get("status") == "done" and Path(job.output).exists() and report.get("job") == asdict(job)


class Progress:
    """The jobs' bar on stderr (done/total, rate, ETA, failures); a failed job's error on its own line."""

    def __init__(self, total: int, quiet: bool):
        self.quiet, self.failed = quiet, 0
        self.bar = progress_bar(total, "jobs", "job", quiet)

    def add(self, report: dict) -> None:
        if report["status"] != "done":
            self.failed += 1
            self.bar.set_postfix(failed=self.failed, refresh=False)
            if not self.quiet:
                self.bar.write(f"job {report['id']} failed: {report['error']}", file=sys.stderr)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def execute(jobs: list[Job], reports: Path, workers: int = 1, ray_address: str | None = None,
            resume: bool = False, quiet: bool = False, also_written: Sequence[Path] = ()) -> list[dict]:
    """Run the jobs (skipping finished ones with `resume`, after removing what a killed run
    left half-written: of the jobs' outputs, their reports and `also_written`); returns every
    job's report."""
    if resume:
        remove_stale_temporaries([*(j.output for j in jobs), *(reports / report_name(j.id) for j in jobs), *also_written])
    done_before = [j for j in jobs if resume and finished(reports, j)]
    todo = [j for j in jobs if j not in done_before]
    results = {j.id: json.loads((reports / report_name(j.id)).read_text()) for j in done_before}
    if done_before and not quiet:
        print(f"resuming: {len(done_before)} of {len(jobs)} jobs already done", file=sys.stderr)
    progress = Progress(len(todo), quiet)
    for report in _dispatch(todo, reports, workers, ray_address):
        results[report["id"]] = report
        progress.add(report)
    progress.close()
    return [results[j.id] for j in jobs]


def _dispatch(jobs: list[Job], reports: Path, workers: int, ray_address: str | None):
    if not jobs:
        return
    if ray_address:
        yield from _dispatch_ray(jobs, reports, ray_address)
    elif workers <= 1:
        for job in jobs:
            yield run_job(job, reports)
    else:
        # Each process gets its share of the cores (ONNX Runtime reads SIMNET_THREADS).
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ.setdefault("SIMNET_THREADS", str(threads))
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_pool_process,
                                 initargs=(os.getpid(),)) as pool:
            pending = {pool.submit(run_job, job, reports) for job in jobs}
            while pending:
                finished_now, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished_now:
                    yield future.result()


def _pool_process(parent: int) -> None:
    """A pool process: dies with the batch (a killed batch left its pool blocked for minutes),
    and keeps freed memory for its next job."""
    try:
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown is all there is
        pass
    else:
        if os.getppid() != parent:  # the batch died before the line above
            os._exit(1)
    keep_freed_memory()


def _dispatch_ray(jobs: list[Job], reports: Path, address: str):
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs Ray: pip install 'simnet-manipulate[ray]'") from None
    try:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    except Exception as error:  # Ray raises ConnectionError and its own types
        raise InputError(f"cannot reach the Ray cluster at {address}: {error}") from None
    remote = ray.remote(run_job)
    pending = [remote.remote(job, reports) for job in jobs]
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        for reference in ready:
            yield ray.get(reference)


def assemble_ora(source: Path, out: Path, jobs: list[Job], reports: list[dict], replace_layers: bool,
                 mirror: bool = False) -> int:
    """The output .ora: the input's layers with each finished result above its source (or in
    its place). With `mirror` each result takes its source's place and name: the stack mirrored,
    every layer manipulated alike. Returns how many results went in. Results are decoded one at
    a time as they are written; the input's own layers are copied as they are."""
    from ..io.ora import Document, Layer, write_ora

    document = ora_document(source)
    results = {job.layer: job.output for job, report in zip(jobs, reports) if report["status"] == "done"}
    layers = []
    for index, layer in enumerate(document.layers):
        if index in results:
            made = Layer(layer.name if mirror else f"{layer.name} (manipulated)", x=0, y=0, opacity=layer.opacity, visible=layer.visible,
                         composite_op=layer.composite_op, path=layer.path, decode=_rgba_reader(results[index]))
            layers.append(made)
            if not (replace_layers or mirror):
                layers.append(layer)
        else:
            layers.append(layer)
    write_ora(out, Document(document.width, document.height, layers))
    return len(results)


def _rgba_reader(path: str):
    def read() -> np.ndarray:
        pixels = imageio.read_image(path).pixels
        if pixels.shape[2] != 4:
            pixels = np.dstack([rgb_channels(pixels), np.ones(pixels.shape[:2], np.float32)])
        return pixels

    return read
