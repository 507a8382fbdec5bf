"""One edit, every layer: replaying a solved edit on one more layer, against solving again.

    python bench/replay.py [--sizes 2048 4096] [--regions 8] [--layers 20] [--repeats 3]
                           [--models moments simnet-small] [--out DIR] [--quick]

Each configuration (model x size) runs in a fresh process: the bundled painting scaled to that
size with an 8-region map, one region moved (bench/speed.build_inputs). It times, median of
--repeats after a warm-up:
- solve: the whole engine on the painting with the solved edit kept (pipeline.solve);
- direct: the same without keeping it (pipeline.run), to show what keeping costs;
- replay: engine.replay.apply on one more RGBA layer of that size.
Then it replays on --layers layers, one at a time as `simnet batch --together` does, and reads
the process's peak resident memory after the first layer and after the last: a stack streamed
layer by layer keeps its peak (a stack held whole would grow by the layers' size). It also
gives the saved edit's size and, on the solving image, how far the replay is from the direct
result over the warped pixels (8-bit levels): a learned model's blend of several motions and
its texture guidance are not replayed. Writes summary.md and replay.csv to --out (default
bench/results/replay).
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.speed import build_inputs, peak_rss_mb, run_in_child  # noqa: E402

HERE = Path(__file__).resolve().parent


def measure(config: dict, results) -> None:
    """Child process: one configuration, a result row onto the queue."""
    from engine import apply, run, solve
    from engine.app.memory import keep_freed_memory
    from engine.compose import WARPED
    from engine.edit import Edit
    from engine.io import imageio
    from engine.replay import to_bytes

    keep_freed_memory()
    with tempfile.TemporaryDirectory() as folder:
        path, labels, target = build_inputs(config["width"], config["height"], config["regions"], Path(folder))
        painting = imageio.read_image(path).pixels
    edit = Edit(labels, target)
    rng = np.random.default_rng(0)
    layer = np.dstack([painting, (rng.random(painting.shape[:2]) > 0.5).astype(np.float32)])

    def timed(work) -> tuple[float, object]:
        times, value = [], None
        for _ in range(config["repeats"] + 1):  # the first is the warm-up
            start = time.perf_counter()
            value = work()
            times.append(time.perf_counter() - start)
        return float(np.median(times[1:])), value

    solve_s, solved = timed(lambda: solve(painting, edit, config["model"]))
    direct_s, direct = timed(lambda: run(painting, edit, config["model"]))
    replay_s, _ = timed(lambda: apply(solved, layer))
    layer = None  # its memory goes before the streamed layers' peak is read
    replayed = apply(solved, painting)
    warped = direct.kind == WARPED
    hole = np.zeros(solved.shape, bool)
    hole[solved.crop] = solved.hole
    warped &= ~hole
    levels = np.abs(replayed[warped] - direct.pixels[warped]) * 255 if warped.any() else np.zeros(1)
    first_peak = None
    for index in range(config["layers"]):  # a stack, streamed: made, replayed and dropped in turn
        shade = np.float32((index + 1) / (config["layers"] + 1))
        one = np.dstack([painting * shade, np.full(painting.shape[:2], shade, np.float32)])
        apply(solved, one)
        del one
        if index == 0:
            first_peak = peak_rss_mb()
    row = dict(config)
    row.update(
        solve=solve_s,
        direct=direct_s,
        replay=replay_s,
        replay_share=replay_s / solve_s,
        replay_direct=replay_s / direct_s,
        edit_kb=len(to_bytes(solved)) / 1024,
        warped_mean_levels=float(levels.mean()),
        warped_p99_levels=float(np.percentile(levels, 99)),
        peak_first_mb=first_peak,
        peak_last_mb=peak_rss_mb(),
    )
    results.put(row)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096], help="long side (square images)")
    parser.add_argument("--regions", type=int, default=8)
    parser.add_argument("--layers", type=int, default=20, help="layers replayed one at a time for the memory figure")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["moments", "simnet-small"])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "replay")
    parser.add_argument("--quick", action="store_true", help="512 px, 4 layers, one run")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.layers, args.repeats = [512], 4, 1
    rows = []
    for model in args.models:
        for size in args.sizes:
            config = {"model": model, "width": size, "height": size, "regions": args.regions,
                      "layers": args.layers, "repeats": args.repeats}
            rows.append(run_in_child(measure, config))
            r = rows[-1]
            print(f"{model} {size}: solve {r['solve']:.2f} s, replay {r['replay']:.3f} s ({r['replay_share']:.1%})", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    fields = ["model", "width", "height", "regions", "solve", "direct", "replay", "replay_share", "replay_direct", "edit_kb",
              "warped_mean_levels", "warped_p99_levels", "layers", "peak_first_mb", "peak_last_mb"]
    with open(args.out / "replay.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"# Replay against solving: {platform.processor() or platform.machine()}, {multiprocessing.cpu_count()} cores, "
        f"median of {args.repeats} after a warm-up",
        "",
        f"Command: `python bench/replay.py {shlex.join(argv if argv is not None else sys.argv[1:])}`",
        "",
        f"The bundled painting, square, {args.regions} regions, one moved. solve: the engine keeping the solved edit; "
        "direct: the engine alone; replay: the solved edit on one more RGBA layer (goal: at most 10% of a solve). "
        "Replay vs direct: on the solving image, over the warped pixels, in 8-bit levels. Peak RSS after replaying "
        f"the first and the last of {args.layers} layers, one at a time.",
        "",
        "| model | size | solve s | direct s | replay s | replay / solve | replay / direct | edit file KB | replay vs direct, mean / p99 levels | peak after 1 layer MB | after last MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['width']}x{r['height']} | {r['solve']:.3f} | {r['direct']:.3f} | {r['replay']:.3f} | "
            f"{r['replay_share']:.1%} | {r['replay_direct']:.1%} | {r['edit_kb']:.0f} | {r['warped_mean_levels']:.2f} / {r['warped_p99_levels']:.1f} | "
            f"{r['peak_first_mb']:.0f} | {r['peak_last_mb']:.0f} |"
        )
    summary = "\n".join(lines) + "\n"
    (args.out / "summary.md").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
