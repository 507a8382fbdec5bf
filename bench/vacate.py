"""Vacated areas with exact ground truth: a figure pasted into a host painting, then moved or
deleted (bench/edits.py `vacate_edit`), every method scored where the figure left.

    python bench/vacate.py [--hosts NAME ...] [--size 512] [--edits 2] [--by-masks] [--before-repo DIR] [--out DIR]

Hosts are paintings from --data (default ../shared/data/art, else the bundled sample) with their
automatic region maps; figures are cut from the painted region maps beside them (regions/*.png,
or the bundled sample's). Each host gets, per figure, `--edits` moves and one deletion. With
--by-masks the engine is given each move as a Krita or GIMP user gives it, two masks (the figure
and its new place, so everything else is one background region), and there are no deletions.

Metrics, per edit:
- vacated_psnr, vacated_perceptual, vacated_gram: over the vacated pixels (PSNR) and their box
  grown by 8 px (the perceptual distance and Gram distance to the ground truth's box);
- placed_psnr: over the figure's new place (moves only);
- changed_outside: pixels that differ from the exemplar outside the edit zone (the changed
  labels and the figure's two places, grown by engine.compose.edit_band);
- from_deleted: pixels whose provenance is the deleted figure (engine methods only);
- seconds: the whole method; fill_seconds: the engine's fill stage alone.
Peers in the same run: cut + paste + OpenCV Telea, cut + paste + G'MIC inpaint_matchpatch (when
gmic is installed), and with --before-repo the engine of another checkout (the compositor before
layered composition), run in a subprocess. Writes summary.md, edits.csv and sheet.png to --out.
"""

from __future__ import annotations

import argparse
import csv
import shlex
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import edits as edit_module  # noqa: E402
from bench.methods import (  # noqa: E402
    MethodFailed,
    before_method,
    run_before,
    gmic_available,
    inpaint_gmic,
    inpaint_opencv,
)
from bench.metrics import FeatureMetrics, psnr  # noqa: E402
from bench.quality import SHARED_ART, contact_sheet, load  # noqa: E402
from engine import (  # noqa: E402
    compose,
    fill,
    run,
    samples,  # noqa: E402
)
from engine.edit import Edit, from_masks  # noqa: E402
from engine.io import imageio  # noqa: E402

HERE = Path(__file__).resolve().parent
HELD_OUT = ("vermeer_girl_with_a_pearl_earring", "hokusai_great_wave", "vangogh_bedroom_in_arles", "seurat_grande_jatte")
METRICS = ("vacated_psnr", "vacated_perceptual", "vacated_gram", "placed_psnr", "changed_outside", "from_deleted",
           "seconds", "fill_seconds")
LOWER_IS_BETTER = {"vacated_perceptual", "vacated_gram", "changed_outside", "from_deleted", "seconds", "fill_seconds"}
ENGINE_MODELS = ("moments", "simnet-small")
CROP_MARGIN = 8
SHEET_TILE = 200
class FillTimer:
    """Seconds spent in engine.compose's fill stage, summed while installed."""

    def __init__(self):
        self.seconds = 0.0
        self.real = compose.fill_vacated

    def __call__(self, *args):
        start = time.perf_counter()
        try:
            return self.real(*args)
        finally:
            self.seconds += time.perf_counter() - start


def engine_method(model: str, timer: FillTimer, by_masks: bool = False):
    def method(edit):
        timer.seconds = 0.0
        if by_masks:
            figure, placed = (edit.exemplar_labels == edit.figure).astype(np.float32), edit.placed.astype(np.float32)
            solved = from_masks(figure.shape, figure, placed)
        else:
            solved = Edit(edit.exemplar_labels, edit.target_labels)
        result = run(edit.exemplar, solved, model=model, provenance=True)
        deleted = edit.figure if edit.kind == "vacate-delete" else None
        from_deleted = int((result.provenance.source_region == deleted).sum()) if deleted is not None else 0
        return result.pixels, {"from_deleted": from_deleted, "fill_seconds": timer.seconds}

    return method


def peer_method(fill):
    """Cut the figure, paste it at its new place (the exact shift of its centroid: the figure
    keeps its shape), and fill the place it left with `fill(image, hole)`."""

    def method(edit):
        image = edit.exemplar.copy()
        if edit.placed.any():
            source = edit.exemplar_labels == edit.figure
            (sy, sx), (ty, tx) = np.argwhere(source).mean(0), np.argwhere(edit.placed).mean(0)
            rows, cols = np.nonzero(edit.placed)
            image[rows, cols] = edit.exemplar[np.rint(rows + sy - ty).astype(int), np.rint(cols + sx - tx).astype(int)]
        return fill(image, edit.vacated), {}

    return method


def before_engine(repo: Path, model: str, by_masks: bool = False):
    """The engine of another checkout (bench.methods.before_method, run_before) on a vacate edit."""
    run_labels = before_method(repo, model)

    def method(edit):
        if by_masks:
            figure = (edit.exemplar_labels == edit.figure).astype(np.float32)
            arrays = {"exemplar": edit.exemplar, "source_mask": figure, "target_mask": edit.placed.astype(np.float32)}
            return run_before(repo, arrays, model), {}
        return run_labels(edit.exemplar, edit.exemplar_labels, edit.target_labels)[0], {}

    return method


def edit_zone(edit) -> np.ndarray:
    core = (edit.exemplar_labels != edit.target_labels) | (edit.exemplar_labels == edit.figure) | edit.placed
    band = compose.edit_band(*core.shape)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    return cv2.dilate(core.astype(np.uint8), kernel).astype(bool)


def crop_box(mask: np.ndarray, margin: int = CROP_MARGIN):
    rows, cols = np.nonzero(mask)
    height, width = mask.shape
    return (slice(max(0, rows.min() - margin), min(height, rows.max() + 1 + margin)),
            slice(max(0, cols.min() - margin), min(width, cols.max() + 1 + margin)))


def score(edit, image, extra: dict, features: FeatureMetrics) -> dict:
    box = crop_box(edit.vacated)
    outside = ~edit_zone(edit)
    changed = np.any(image[outside] != edit.exemplar[outside], axis=1)
    return {
        "vacated_psnr": psnr(image, edit.ground_truth, edit.vacated),
        "vacated_perceptual": features.perceptual(image[box], edit.ground_truth[box]),
        "vacated_gram": features.gram(image[box], edit.ground_truth[box]),
        "placed_psnr": psnr(image, edit.ground_truth, edit.placed) if edit.placed.any() else None,
        "changed_outside": int(changed.sum()),
        "from_deleted": extra.get("from_deleted"),
        "fill_seconds": extra.get("fill_seconds"),
    }


def figures(data: Path, size: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, pixels, mask) cut-outs from every painting with a painted region map."""
    painted = sorted((data / "regions").glob("*.png")) if (data / "regions").is_dir() else []
    sources = [(data / (p.stem + ".jpg")) for p in painted if (data / (p.stem + ".jpg")).is_file()]
    if not sources:
        sources = [samples.EXEMPLAR]
    cutouts = []
    for path in sources:
        pixels, labels = load(path, size, 8)
        try:
            cut, mask = edit_module.figure_cutout(pixels, labels)
        except ValueError:
            continue
        cutouts.append((path.stem, cut, mask))
    return cutouts


def summarise(rows: list[dict], methods: list[str]) -> str:
    lines = ["| method | n | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        cells = []
        for metric in METRICS:
            values = np.array([r[metric] for r in mine if r[metric] is not None], float)
            if not values.size:
                cells.append("n/a")
            elif metric in ("changed_outside", "from_deleted"):
                cells.append(f"{int(values.sum())} total")
            else:
                half = 1.96 * values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else 0.0
                cells.append(f"{values.mean():.3f} ± {half:.3f}")
        lines.append(f"| {method} | {len(mine)} | " + " | ".join(cells) + " |")
    lines += ["", "Mean ± 95% interval of the mean; changed_outside and from_deleted are totals over all edits."]
    lines += ratios(rows, methods)
    return "\n".join(lines) + "\n"


def ratios(rows: list[dict], methods: list[str]) -> list[str]:
    """Each engine model against the peers the goals name, edit by edit."""
    by_edit: dict = {}
    for r in rows:
        by_edit.setdefault((r["host"], r["edit"]), {})[r["method"]] = r
    lines = ["", "Against the peers (same edits, same run):", ""]
    for ours in [m for m in methods if m in ENGINE_MODELS]:
        for peer, metric, better in (("cut+paste+gmic", "vacated_perceptual", "lower"),
                                     ("cut+paste+inpaint", "vacated_psnr", "higher"),
                                     ("cut+paste+gmic", "seconds", "lower")):
            pairs = [(e[ours][metric], e[peer][metric]) for e in by_edit.values()
                     if ours in e and peer in e and e[ours][metric] is not None and e[peer][metric] is not None]
            if not pairs:
                continue
            mine, theirs = np.array(pairs, float).T
            if metric == "vacated_psnr":
                lines.append(f"- {ours} vs {peer}, {metric}: {mine.mean() - theirs.mean():+.2f} dB "
                             f"({(mine > theirs).sum()} of {len(pairs)} edits better)")
            elif metric == "seconds":
                fills = [e[ours]["fill_seconds"] for e in by_edit.values() if ours in e and peer in e]
                lines.append(f"- {ours} fill vs {peer} whole method, seconds: {np.mean(fills):.3f} vs {theirs.mean():.3f} "
                             f"({theirs.mean() / max(np.mean(fills), 1e-9):.1f}x faster)")
            else:
                lines.append(f"- {ours} vs {peer}, {metric}: {100 * (mine.mean() / theirs.mean() - 1):+.1f}% "
                             f"({(mine < theirs).sum()} of {len(pairs)} edits better)")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED_ART if SHARED_ART.is_dir() else samples.FOLDER)
    parser.add_argument("--hosts", nargs="+", default=None, help="host paintings (stems); default: the held-out ones")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--edits", type=int, default=2, help="moves per host and figure (plus one deletion)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--before-repo", type=Path, help="also run the engine of this checkout (e.g. a worktree of an older commit)")
    parser.add_argument("--methods", nargs="+", help="only these methods")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "vacate")
    parser.add_argument("--by-masks", action="store_true", help="give the engine each move as two masks (no deletions)")
    parser.add_argument("--quick", action="store_true", help="one host, one figure, one move and one deletion")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    timer = FillTimer()
    compose.fill_vacated = timer
    methods = {name: engine_method(name, timer, args.by_masks) for name in ENGINE_MODELS}
    methods["cut+paste+inpaint"] = peer_method(inpaint_opencv)
    if gmic_available():
        methods["cut+paste+gmic"] = peer_method(inpaint_gmic)
    if args.before_repo is not None:
        for model in ENGINE_MODELS:
            methods[f"before {model}"] = before_engine(args.before_repo.resolve(), model, args.by_masks)
    if args.methods:
        methods = {name: methods[name] for name in args.methods}
    features = FeatureMetrics()
    fill.warm_up()  # compile the fill's loops (or load them from numba's cache) before timing
    hosts = args.hosts or [h for h in HELD_OUT if (args.data / f"{h}.jpg").is_file()] or ["etretat"]
    cutouts = figures(args.data, args.size)
    if args.quick:
        hosts, cutouts, args.edits = hosts[:1], cutouts[:1], 1
    rng = np.random.default_rng(args.seed)
    rows, tiles = [], []
    started = time.perf_counter()
    for host_name in hosts:
        path = args.data / f"{host_name}.jpg" if (args.data / f"{host_name}.jpg").is_file() else samples.FOLDER / f"{host_name}.jpg"
        host, host_labels = load(path, args.size, 8)
        number = 0
        for figure_name, cut, mask in cutouts:
            for kind in ["vacate-move"] * args.edits + ([] if args.by_masks else ["vacate-delete"]):
                edit = edit_module.vacate_edit(host, host_labels, cut, mask, kind, rng)
                box = crop_box(edit.vacated | edit.placed, 24)
                row_tiles = [imageio.to_rgb8(edit.exemplar[box]), imageio.to_rgb8(edit.ground_truth[box])]
                for name, method in methods.items():
                    start = time.perf_counter()
                    try:
                        image, extra = method(edit)
                    except MethodFailed as failure:
                        print(f"{host_name} edit {number}, {name}: {failure}", file=sys.stderr)
                        row_tiles.append(np.full_like(row_tiles[0], 255))
                        continue
                    seconds = time.perf_counter() - start
                    rows.append({"host": host_name, "figure": figure_name, "edit": number, "kind": kind, "method": name,
                                 **score(edit, image, extra, features), "seconds": seconds})
                    row_tiles.append(imageio.to_rgb8(image[box]))
                tiles.append(row_tiles)
                number += 1
        print(f"{host_name}: {number} edits ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    with open(args.out / "edits.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["host", "figure", "edit", "kind", "method", *METRICS])
        writer.writeheader()
        writer.writerows(rows)
    contact_sheet(tiles, ["exemplar", "ground truth", *(name[:32] for name in methods)], args.out / "sheet.png", SHEET_TILE)
    command = shlex.join(argv if argv is not None else sys.argv[1:])
    summary = (f"# Vacated areas: {len(hosts)} host paintings ({', '.join(hosts)}), figures cut from "
               f"{', '.join(n for n, _, _ in cutouts)}, {args.size} px, seed {args.seed}\n\n"
               f"Command: `python bench/vacate.py {command}`\n\n" + summarise(rows, list(methods)))
    (args.out / "summary.md").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
