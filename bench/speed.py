"""Speed and memory benchmark: time per stage and peak memory against image size and region count.

    python bench/speed.py [--sizes 512 1024 2048 4096] [--aspects 1:1 16:9] [--regions 1 2 4 8]
                          [--repeats 3] [--edit move|bend] [--affine-too] [--out DIR] [--quick]

Each configuration (model x size x aspect x region count) runs in a fresh process, so its peak
resident memory is its own: the bundled painting scaled to that size and saved as PNG, a region
map with that many regions (one of them moved, or bent with --edit bend: bench/edits.py), then one warm-up and --repeats
timed runs of the whole path: decode, motion (the model: G_KP for learned models), transport
(full-resolution warp and blend), texture guidance, encode to PNG. The peak resident memory
is read after those runs; automatic segmentation is timed beside them, after that reading, with
the process's peak then given separately. Figures are medians; each model's time is also given as a ratio to the
`moments` baseline measured in the same run. --affine-too: each model also with the reshape
step off ("<model> affine": its affine motions as they are, engine.reshape). Writes summary.md, speed.csv and speed.png (time
and memory against megapixels) to --out (default bench/results/speed).
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import platform
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HERE = Path(__file__).resolve().parent
STAGES = ("decode", "motion", "transport", "encode")


def build_inputs(width: int, height: int, region_count: int, folder: Path, edit: str = "move"):
    """The sample painting at width x height (written as PNG) and a map pair with
    `region_count` regions, one of them moved (none for a single region); region_count 0 is
    the demo's own edit (its painted maps: the Needle moved, one figure)."""
    import cv2

    from bench.edits import make_edit
    from engine import samples
    from engine.io import imageio
    from engine.regions import resize_labels
    from engine.segment import segment

    sample = imageio.read_image(samples.EXEMPLAR).pixels
    if region_count == 0:
        from engine.regions import maps_from_colour_pair

        labels, target, _ = maps_from_colour_pair(
            imageio.read_rgb8(samples.REGIONS), imageio.read_rgb8(samples.EDITED)
        )
    elif region_count < 2:
        labels = target = np.zeros(sample.shape[:2], np.int32)
    else:
        labels = segment(sample, max_regions=region_count)
        target = make_edit(sample, labels, edit, np.random.default_rng(0)).target_labels
    painting = cv2.resize(sample, (width, height), interpolation=cv2.INTER_CUBIC)
    path = folder / "exemplar.png"
    imageio.write_image(path, painting)
    return path, resize_labels(labels, height, width), resize_labels(target, height, width)


def measure(config: dict, results) -> None:
    """Child process: time one configuration, put a result row on the queue."""
    from engine import run
    from engine.app.memory import keep_freed_memory
    from engine.edit import Edit
    from engine.io import imageio
    from engine.segment import segment

    keep_freed_memory()  # as the worker and `simnet batch` do: the figures are warm runs, as theirs are

    with tempfile.TemporaryDirectory() as folder:
        path, labels, target = build_inputs(config["width"], config["height"], config["regions"], Path(folder), config["edit"])
        timings = []
        for attempt in range(config["repeats"] + 1):  # the first is the warm-up
            marks = {}

            def progress(stage, fraction, marks=marks):
                if fraction >= 1.0:
                    marks[stage] = time.perf_counter()

            start = time.perf_counter()
            pixels = imageio.read_image(path).pixels
            decoded = time.perf_counter()
            result = run(pixels, Edit(labels, target), model=config["model"], progress=progress,
                         reshape=config["reshape"]).pixels
            composed = time.perf_counter()
            imageio.write_image(Path(folder) / "result.png", result)
            encoded = time.perf_counter()
            timings.append({
                "decode": decoded - start,
                "motion": marks["motion"] - decoded,
                "transport": marks["transport"] - marks["motion"],  # texture guidance included
                "encode": encoded - composed,
                "total": encoded - start,
            })
        peak = peak_rss_mb()  # the manipulations' own peak, before segmentation's
        seg_start = time.perf_counter()
        segment(pixels)
        segmentation = time.perf_counter() - seg_start
    row = dict(config)
    for key in (*STAGES, "total"):
        row[key] = float(np.median([t[key] for t in timings[1:]]))
    row["segmentation"] = segmentation
    row["provider"] = _provider(config["model"])
    row["peak_rss_mb"] = peak
    row["segmentation_peak_rss_mb"] = peak_rss_mb()
    results.put(row)


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started its program. VmHWM, not ru_maxrss:
    ru_maxrss survives exec, so a spawned child would report its parent's peak at fork time."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _provider(model: str) -> str:
    from engine.models import load_model

    loaded = load_model(model)
    if not hasattr(loaded, "backend"):
        return "numpy/OpenCV"
    graphs = loaded.backend.graphs
    return f"{graphs.provider.replace('ExecutionProvider', '')} {graphs.precision}"


def random_paper_model(folder: Path) -> Path:
    """The `paper` preset with random weights, exported: its speed is what matters here."""
    import torch

    from engine.simnet.config import preset
    from engine.simnet.model import SimNet
    from export.onnx_export import export_checkpoint

    torch.manual_seed(0)
    model = SimNet(preset("paper"))
    checkpoint = folder / "paper-random.pt"
    torch.save({"config": preset("paper").to_dict(), "model": model.state_dict(), "step": 0, "data": None}, checkpoint)
    export_checkpoint(checkpoint, folder / "paper-random", name="paper-random", log=lambda m: None)
    return folder / "paper-random"


def run_in_child(target, config: dict) -> dict:
    """`target(config, queue)` in a fresh process (its peak memory its own); the row it puts."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=target, args=(config, results))
    child.start()
    row = results.get()
    child.join()
    return row


def sizes_for(size: int, aspect: str) -> tuple[int, int]:
    across, down = (int(v) for v in aspect.split(":"))
    return (size, size * down // across) if across >= down else (size * across // down, size)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    keys = sorted({(r["model"], r["regions"]) for r in rows})
    for model, count in keys:
        mine = sorted((r for r in rows if r["model"] == model and r["regions"] == count), key=lambda r: r["megapixels"])
        mp = [r["megapixels"] for r in mine]
        left.plot(mp, [r["total"] for r in mine], "o-", label=f"{model}, {count} region(s)")
        right.plot(mp, [r["peak_rss_mb"] for r in mine], "o-", label=f"{model}, {count} region(s)")
    left.set(xlabel="megapixels", ylabel="seconds, end to end (median)", title="time")
    right.set(xlabel="megapixels", ylabel="peak resident memory (MB)", title="memory")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    left.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def providers_line() -> str:
    try:
        import onnxruntime
    except ImportError:
        return "ONNX Runtime: not installed"
    return f"ONNX Runtime {onnxruntime.__version__}, providers listed: {', '.join(onnxruntime.get_available_providers())}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048, 4096], help="long side")
    parser.add_argument("--aspects", nargs="+", default=["1:1", "16:9"])
    parser.add_argument("--regions", type=int, nargs="+", default=[1, 2, 4, 8],
                        help="region counts of a synthetic move; 0: the demo's edit (one figure moved)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=None, help="default: every model")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "speed")
    parser.add_argument("--paper", action="store_true", help="also the paper preset (random weights, exported here)")
    parser.add_argument("--quick", action="store_true", help="256 and 512 px, 1 and 2 regions, one run")
    parser.add_argument("--edit", choices=("move", "bend"), default="move", help="what happens to one region")
    parser.add_argument("--affine-too", action="store_true", help="each model also with the reshape step off")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.aspects, args.regions, args.repeats = [256, 512], ["1:1"], [1, 2], 1
    from engine.models import default_model, model_names

    models = args.models or model_names()
    args.out.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.TemporaryDirectory()
    if args.paper:
        models = [*models, str(random_paper_model(Path(scratch.name)))]
    rows = []
    for model, reshape in [(m, r) for m in models for r in ((True, False) if args.affine_too else (True,))]:
        for aspect in args.aspects:
            for size in args.sizes:
                for count in args.regions:
                    width, height = sizes_for(size, aspect)
                    config = {"model": model, "width": width, "height": height, "regions": count,
                              "megapixels": round(width * height / 1e6, 3), "repeats": args.repeats,
                              "edit": args.edit, "reshape": reshape}
                    rows.append(run_in_child(measure, config))
                    r = rows[-1]
                    r["model"] = Path(model).name + ("" if reshape else " affine")
                    print(f"{r['model']} {width}x{height} {count} region(s): {r['total']:.3f} s, {r['peak_rss_mb']:.0f} MB", file=sys.stderr)
    baseline = {(r["width"], r["height"], r["regions"]): r["total"] for r in rows if r["model"] == "moments"}
    for r in rows:
        base = baseline.get((r["width"], r["height"], r["regions"]))
        r["x_moments"] = r["total"] / base if base else None
    fields = ["model", "provider", "width", "height", "megapixels", "regions", *STAGES, "total", "x_moments", "segmentation", "peak_rss_mb", "segmentation_peak_rss_mb"]
    with open(args.out / "speed.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args.out / "speed.png")
    lines = [
        f"# Speed: {platform.processor() or platform.machine()}, {multiprocessing.cpu_count()} cores, median of {args.repeats} after a warm-up",
        "",
        f"Command: `python bench/speed.py {shlex.join(argv if argv is not None else sys.argv[1:])}`",
        "",
        f"{providers_line()}. Models measured: {', '.join(Path(m).name for m in models)} (default {default_model()[0]}); "
        "`paper-random` is the paper preset with random weights (speed only). Motion is the model "
        "(G_KP and G_A for learned models); transport is the full-resolution warp, blend and texture guidance.",
        "",
        "| model | provider | size | MP | regions | decode | motion | transport | encode | total s | x moments | peak RSS MB | segmentation | peak with segmentation MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r['x_moments']:.2f}" if r["x_moments"] is not None else "n/a"
        stages = " | ".join(f"{r[s]:.3f}" for s in STAGES)
        lines.append(f"| {r['model']} | {r['provider']} | {r['width']}x{r['height']} | {r['megapixels']} | {r['regions']} | {stages} | "
                     f"{r['total']:.3f} | {ratio} | {r['peak_rss_mb']:.0f} | {r['segmentation']:.3f} | {r['segmentation_peak_rss_mb']:.0f} |")
    summary = "\n".join(lines) + "\n\n![time and memory against megapixels](speed.png)\n"
    (args.out / "summary.md").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
