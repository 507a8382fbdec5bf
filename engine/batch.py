"""`simnet batch`: one region manipulation applied to many layers or files.

Inputs: an OpenRaster file (every chosen paint layer), a folder of images, or a JSON Lines job
file (one job per line). The edit: the same source/target masks or region maps for every input
(at the canvas size), or per-layer/per-file maps found by name in --maps-dir
(`NAME.regions.png` and `NAME.target.png`). Each job runs the engine in-process; --jobs N runs N
processes, --ray ADDRESS sends jobs to an existing Ray cluster (inputs and outputs must be on a
filesystem the nodes share).

Each job writes its output atomically and a JSON report (status, timings, error) into the
report folder; --resume skips the jobs whose report says done and whose output exists. A failed
job is reported and the batch goes on. For an .ora the finished layers are gathered into a new
.ora (each result above its source, or replacing it in the copy with --replace); the input file
is never written.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from . import imageio
from .errors import InputError
from .memory import keep_freed_memory

MAP_SUFFIXES = (".regions.png", ".target.png")


@dataclass(frozen=True)
class Job:
    """One manipulation. exemplar: an image file, or an .ora with `layer` (its index in the
    stack); the edit: `regions` + `target` (colour maps) or `source_mask` + `target_mask`."""

    id: str
    exemplar: str
    output: str
    layer: int | None = None
    regions: str | None = None
    target: str | None = None
    source_mask: str | None = None
    target_mask: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class EditFiles:
    regions: Path | None = None
    target: Path | None = None
    source_mask: Path | None = None
    target_mask: Path | None = None
    maps_dir: Path | None = None

    def for_name(self, name: str) -> dict:
        """The edit for the input called `name`: its own maps from maps_dir when there, else
        the shared edit."""
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


def plan_folder(folder: Path, out: Path, edit: EditFiles, model: str | None) -> list[Job]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in imageio.READ_SUFFIXES
                   and not any(p.name.endswith(s) for s in MAP_SUFFIXES))
    if not files:
        raise InputError(f"no images in {folder}")
    return [Job(id=p.stem, exemplar=str(p), output=str(out / f"{p.stem}.png"), model=model, **edit.for_name(p.stem))
            for p in files]


def plan_ora(path: Path, out: Path, edit: EditFiles, model: str | None, patterns: list[str], visible_only: bool) -> list[Job]:
    from .ora import read_ora

    document = read_ora(path)
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
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            values = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{path.name} line {number} is not JSON: {error}") from None
        unknown = set(values) - known
        if unknown or "exemplar" not in values or "output" not in values:
            raise InputError(f"{path.name} line {number}: needs exemplar and output; unknown keys: {sorted(unknown) or 'none'}")
        base = path.parent
        resolved = {k: str((base / v).resolve()) if k not in ("id", "model", "layer") and isinstance(v, str) else v
                    for k, v in values.items()}
        resolved.setdefault("id", f"line{number:05d}")
        jobs.append(Job(**resolved))
    if not jobs:
        raise InputError(f"{path.name} holds no jobs")
    ids = [j.id for j in jobs]
    if len(set(ids)) != len(ids):
        raise InputError(f"{path.name}: job ids must be unique")
    return jobs


def parts_folder(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def run_job(job: Job) -> dict:
    """Run one job; never raises. Returns its report."""
    from .pipeline import edit_labels, run
    from .regions import maps_from_colour_pair

    started = time.perf_counter()
    timings = {}
    report = {"id": job.id, "job": asdict(job)}
    try:
        if job.layer is not None:
            from .ora import read_ora

            document = read_ora(job.exemplar)
            layer = document.layers[job.layer]
            pixels, bit_depth = layer.placed(document.width, document.height), 8
        else:
            picture = imageio.read_image(job.exemplar)
            pixels, bit_depth = picture.pixels, picture.bit_depth
        timings["read"] = time.perf_counter() - started
        soft = None
        if job.regions and job.target:
            labels, target, _ = maps_from_colour_pair(imageio.read_rgb8(job.regions), imageio.read_rgb8(job.target))
        elif job.source_mask and job.target_mask:
            source, soft = imageio.read_mask(job.source_mask), imageio.read_mask(job.target_mask)
            labels, target = edit_labels(pixels.shape[:2], source, soft)
        else:
            raise InputError("the job has no edit (regions + target, or source_mask + target_mask)")
        mark = time.perf_counter()
        result = run(pixels, labels, target, model=job.model or _default_model(), soft_target=soft).pixels
        timings["manipulate"] = time.perf_counter() - mark
        mark = time.perf_counter()
        output = Path(job.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        imageio.write_image(output, result, bit_depth if output.suffix.lower() in (".png", ".tif", ".tiff") else 8)
        timings["write"] = time.perf_counter() - mark
        report.update(status="done", output=str(output))
    except InputError as error:
        report.update(status="failed", error=str(error))
    except Exception as error:  # an engine bug: the batch goes on, the report keeps the details
        report.update(status="failed", error=f"internal error: {type(error).__name__}: {error}",
                      details=traceback.format_exc(limit=8))
    timings["total"] = time.perf_counter() - started
    report["seconds"] = timings
    return report


def _default_model() -> str:
    from .models import DEFAULT_MODEL

    return DEFAULT_MODEL


def write_report(folder: Path, report: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{report['id']}.json.tmp"
    temporary.write_text(json.dumps(report, indent=1))
    os.replace(temporary, folder / f"{report['id']}.json")


def finished(folder: Path, job: Job) -> bool:
    path = folder / f"{job.id}.json"
    try:
        report = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return report.get("status") == "done" and Path(job.output).exists() and report.get("job") == asdict(job)


class Progress:
    """One line on stderr: done/total, rate, ETA, failures."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet, self.done, self.failed = total, quiet, 0, 0
        self.started = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def add(self, report: dict) -> None:
        self.done += 1
        self.failed += report["status"] != "done"
        if self.quiet:
            return
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        line = (f"{self.done}/{self.total} jobs, {rate * 60:.1f}/min, ETA {int(eta) // 60}m{int(eta) % 60:02d}s"
                + (f", {self.failed} failed" if self.failed else ""))
        if report["status"] != "done":
            print(("\n" if self.tty else "") + f"job {report['id']} failed: {report['error']}", file=sys.stderr)
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty and not self.quiet:
            print(file=sys.stderr)


def execute(jobs: list[Job], reports: Path, workers: int = 1, ray_address: str | None = None,
            resume: bool = False, quiet: bool = False) -> list[dict]:
    """Run the jobs (skipping finished ones with `resume`); returns every job's report."""
    done_before = [j for j in jobs if resume and finished(reports, j)]
    todo = [j for j in jobs if j not in done_before]
    results = {j.id: json.loads((reports / f"{j.id}.json").read_text()) for j in done_before}
    if done_before and not quiet:
        print(f"resuming: {len(done_before)} of {len(jobs)} jobs already done", file=sys.stderr)
    progress = Progress(len(todo), quiet)
    for report in _dispatch(todo, workers, ray_address):
        write_report(reports, report)
        results[report["id"]] = report
        progress.add(report)
    progress.close()
    return [results[j.id] for j in jobs]


def _dispatch(jobs: list[Job], workers: int, ray_address: str | None):
    if not jobs:
        return
    if ray_address:
        yield from _dispatch_ray(jobs, ray_address)
    elif workers <= 1:
        for job in jobs:
            yield run_job(job)
    else:
        # Each process gets its share of the cores (ONNX Runtime reads SIMNET_THREADS).
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ.setdefault("SIMNET_THREADS", str(threads))
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=keep_freed_memory) as pool:
            pending = {pool.submit(run_job, job) for job in jobs}
            while pending:
                finished_now, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished_now:
                    yield future.result()


def _dispatch_ray(jobs: list[Job], address: str):
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs Ray: pip install 'simnet-manipulate[ray]'") from None
    try:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    except Exception as error:  # Ray raises ConnectionError and its own types
        raise InputError(f"cannot reach the Ray cluster at {address}: {error}") from None
    remote = ray.remote(run_job)
    pending = [remote.remote(job) for job in jobs]
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        for reference in ready:
            yield ray.get(reference)


def assemble_ora(source: Path, out: Path, jobs: list[Job], reports: list[dict], replace_layers: bool) -> int:
    """The output .ora: the input's layers with each finished result above its source (or in
    its place). Returns how many results went in."""
    from .ora import Document, Layer, read_ora, write_ora

    document = read_ora(source)
    results = {}
    for job, report in zip(jobs, reports):
        if report["status"] == "done":
            results[job.layer] = imageio.read_image(job.output).pixels
    layers = []
    for index, layer in enumerate(document.layers):
        if index in results:
            pixels = results[index]
            if pixels.shape[2] != 4:
                pixels = np.dstack([pixels[:, :, :3], np.ones(pixels.shape[:2], np.float32)])
            made = Layer(name=f"{layer.name} (manipulated)", pixels=pixels, x=0, y=0, opacity=layer.opacity,
                         visible=layer.visible, composite_op=layer.composite_op, path=layer.path)
            layers.append(made)
            if not replace_layers:
                layers.append(layer)
        else:
            layers.append(layer)
    write_ora(out, Document(document.width, document.height, layers))
    return len(results)
