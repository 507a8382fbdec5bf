"""Quality benchmark: every method against exact ground truth on synthetic edits of artworks.

    python bench/quality.py [--data DIR] [--edits N] [--size 512] [--out DIR] [--quick]

Artworks come from --data (default ../shared/data/art when present, else the bundled sample),
with a region map beside each (`NAME.regions.png`, or `regions/NAME.png` as in ../shared) or an
automatic one. Each artwork gets N edits (bench/edits.py: move, scale, rotate, tps by default,
or --kinds, e.g. tps bend move scale for reshapes) from a fixed seed, and every method (bench/methods.py) is scored on each. Writes to --out (default
bench/results/quality): summary.md (mean and 95% interval per method), edits.csv (one row per
edit and method) and contact_<method>.png (exemplar | target map | ground truth | result).
"""

from __future__ import annotations

import argparse
import csv
import re
import shlex
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import edits as edit_module  # noqa: E402
from bench.methods import MethodFailed, available_methods, before_method, engine_method  # noqa: E402
from bench.metrics import FeatureMetrics, boundary_f_score, psnr, region_iou, ssim  # noqa: E402
from engine import (
    regions,  # noqa: E402
    samples,  # noqa: E402
)
from engine.io import imageio  # noqa: E402
from engine.segment import segment  # noqa: E402

HERE = Path(__file__).resolve().parent
SHARED_ART = HERE.parents[1] / "shared" / "data" / "art"
METRICS = ("psnr", "psnr_edited", "ssim", "ssim_edited", "perceptual", "perceptual_edited", "mask_iou", "boundary_f",
           "gram", "seconds")
LOWER_IS_BETTER = {"perceptual", "perceptual_edited", "gram", "seconds"}
# The edited area's crop for perceptual_edited: the changed pixels' box, grown by this share.
EDITED_MARGIN = 0.1
MIN_CROP = 64
SHEET_ROWS = 12
SHEET_TILE = 160


def artworks(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp")
                  and ".regions." not in p.name and ".edited." not in p.name)


def region_map_for(path: Path, pixels: np.ndarray, max_regions: int) -> np.ndarray:
    for candidate in (path.with_name(path.stem + ".regions.png"), path.parent / "regions" / (path.stem + ".png")):
        if candidate.is_file():
            painted = imageio.to_rgb8(imageio.read_image(candidate).pixels)
            labels = regions.labels_from_colours(painted, regions.dominant_colours(painted))
            return regions.resize_labels(labels, *pixels.shape[:2])
    return segment(pixels, max_regions=max_regions)


def load(path: Path, size: int, max_regions: int):
    pixels = imageio.read_image(path).pixels
    labels = region_map_for(path, pixels, max_regions)
    scale = min(1.0, size / max(pixels.shape[:2]))
    if scale < 1.0:
        h, w = round(pixels.shape[0] * scale), round(pixels.shape[1] * scale)
        pixels = cv2.resize(pixels, (w, h), interpolation=cv2.INTER_AREA).reshape(h, w, -1)
        labels = regions.resize_labels(labels, h, w)
    return pixels[:, :, :3] if pixels.shape[2] == 4 else pixels, labels


def score(edit, image, predicted, features: FeatureMetrics) -> dict:
    changed_regions = [r for r in np.unique(edit.target_labels)
                       if ((edit.exemplar_labels == r) != (edit.target_labels == r)).any()]
    return {
        "psnr": psnr(image, edit.ground_truth),
        "psnr_edited": psnr(image, edit.ground_truth, edit.changed),
        "ssim": ssim(image, edit.ground_truth),
        "ssim_edited": ssim(image, edit.ground_truth, edit.changed),
        "perceptual": features.perceptual(image, edit.ground_truth),
        "perceptual_edited": features.perceptual(*edited_crops(image, edit.ground_truth, edit.changed)),
        "mask_iou": region_iou(predicted, edit.target_labels, np.array(changed_regions)),
        "boundary_f": boundary_f_score(predicted, edit.target_labels),
        "gram": features.gram(image, edit.exemplar),
    }


def edited_crops(image: np.ndarray, truth: np.ndarray, changed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both pictures (H, W, C) cropped to the box of the changed pixels (H, W) bool, grown by
    EDITED_MARGIN of its size (the whole pictures when nothing changed)."""
    rows, cols = np.nonzero(changed)
    if rows.size == 0:
        return image, truth
    height, width = changed.shape
    # at least MIN_CROP on a side: the perceptual network pools the picture down five times
    grow_y = max(int(EDITED_MARGIN * (rows.max() - rows.min() + 1)) + 1, (MIN_CROP - (rows.max() - rows.min() + 1)) // 2 + 1)
    grow_x = max(int(EDITED_MARGIN * (cols.max() - cols.min() + 1)) + 1, (MIN_CROP - (cols.max() - cols.min() + 1)) // 2 + 1)
    box = (slice(max(0, rows.min() - grow_y), min(height, rows.max() + 1 + grow_y)),
           slice(max(0, cols.min() - grow_x), min(width, cols.max() + 1 + grow_x)))
    return image[box], truth[box]


def summarise(rows: list[dict], methods: list[str], baselines=(None,)) -> str:
    """Two tables: mean ± 95% interval of the mean, then medians (a few bad edits can carry
    a mean)."""

    def table(cell) -> list[str]:
        lines = ["| method | n | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
        for method in methods:
            mine = [r for r in rows if r["method"] == method]
            cells = []
            for metric in METRICS:
                values = np.array([r[metric] for r in mine if r[metric] is not None], float)
                cells.append(cell(values) if values.size else "n/a")
            lines.append(f"| {method} | {len(mine)} | " + " | ".join(cells) + " |")
        return lines

    def mean_interval(values: np.ndarray) -> str:
        half = 1.96 * values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else 0.0
        return f"{values.mean():.3f} ± {half:.3f}"

    arrows = ", ".join(f"{m} {'lower' if m in LOWER_IS_BETTER else 'higher'}" for m in METRICS)
    return "\n".join(
        ["Mean ± 95% interval of the mean:", ""] + table(mean_interval)
        + ["", "Median:", ""] + table(lambda values: f"{np.median(values):.3f}")
        + [line for baseline in baselines for line in paired(rows, methods, baseline=baseline or PAIRED_BASELINE)]
        + ["", f"Better: {arrows}."]
    ) + "\n"


PAIRED_BASELINE = "moments"
PAIRED_METRICS = ("psnr", "psnr_edited", "perceptual", "perceptual_edited", "mask_iou")


def paired(rows: list[dict], methods: list[str], resamples: int = 5000, baseline: str = PAIRED_BASELINE) -> list[str]:
    """Each other method against the baseline edit by edit: on how many edits it is better and
    worse, and its mean gain (positive = better) with a 95% bootstrap interval."""
    others = [m for m in methods if m != baseline]
    if baseline not in methods or not others:
        return []
    by_edit = {}
    for r in rows:
        by_edit.setdefault((r["artwork"], r["edit"]), {})[r["method"]] = r
    rng = np.random.default_rng(0)
    lines = ["", f"Paired against {baseline} (better / worse edits, mean gain [95% bootstrap interval]):", "",
             "| method | " + " | ".join(PAIRED_METRICS) + " |", "|---|" + "---|" * len(PAIRED_METRICS)]
    for method in others:
        cells = []
        for metric in PAIRED_METRICS:
            sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
            gains = np.array([sign * (e[method][metric] - e[baseline][metric]) for e in by_edit.values()
                              if method in e and baseline in e
                              and e[method][metric] is not None and e[baseline][metric] is not None], float)
            if not gains.size:
                cells.append("n/a")
                continue
            means = gains[rng.integers(0, gains.size, (resamples, gains.size))].mean(axis=1)
            low, high = np.percentile(means, [2.5, 97.5])
            cells.append(f"{(gains > 0).sum()} / {(gains < 0).sum()}, {gains.mean():+.4f} [{low:+.4f}, {high:+.4f}]")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def per_kind(rows: list[dict], methods: list[str], baselines) -> str:
    """For each edit kind: the mean of the edited-area metrics per method, and the paired tables."""
    lines = ["", "## Per edit kind", ""]
    for kind in sorted({r["kind"] for r in rows}):
        mine = [r for r in rows if r["kind"] == kind]
        lines += [f"### {kind} ({len({(r['artwork'], r['edit']) for r in mine})} edits)", "",
                  "| method | psnr_edited | perceptual_edited | seconds |", "|---|---|---|---|"]
        for method in methods:
            cells = []
            for metric in ("psnr_edited", "perceptual_edited", "seconds"):
                values = [r[metric] for r in mine if r["method"] == method and r[metric] is not None]
                cells.append(f"{np.mean(values):.4f}" if values else "n/a")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        for baseline in baselines:
            lines += paired(mine, methods, baseline=baseline or PAIRED_BASELINE)
        lines.append("")
    return "\n".join(lines) + "\n"


def contact_sheet(tiles: list[list[np.ndarray]], columns, path: Path, side: int = SHEET_TILE) -> None:
    """Rows of (h, w, 3) uint8 pictures under the column names, each fitted into side x side."""
    sheet = Image.new("RGB", (len(columns) * side, 18 + len(tiles) * side), "white")
    draw = ImageDraw.Draw(sheet)
    for index, name in enumerate(columns):
        draw.text((index * side + 4, 3), name, fill="black")
    for row, pictures in enumerate(tiles):
        for column, picture in enumerate(pictures):
            tile = Image.fromarray(picture)
            tile.thumbnail((side, side))
            sheet.paste(tile, (column * side, 18 + row * side))
    sheet.save(path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED_ART if SHARED_ART.is_dir() else samples.FOLDER)
    parser.add_argument("--edits", type=int, default=4, help="edits per artwork")
    parser.add_argument("--size", type=int, default=512, help="long side the artworks are scaled to")
    parser.add_argument("--limit", type=int, default=None, help="at most this many artworks")
    parser.add_argument("--max-regions", type=int, default=8, help="for automatic region maps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", nargs="+", choices=sorted(set(edit_module.KINDS) | set(edit_module.RESHAPE_KINDS)),
                        default=list(edit_module.KINDS), help="the edit kinds, cycled (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "quality")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these artworks (stems), e.g. the held-out ones")
    parser.add_argument("--methods", nargs="+", help="only these methods (default: every available one); an exported model folder counts as one")
    parser.add_argument("--quick", action="store_true", help="the bundled sample, 2 edits at 256 px")
    parser.add_argument("--before-repo", type=Path, help="also run the engine of this checkout as 'before MODEL' (an older commit's worktree)")
    parser.add_argument("--paired-against", nargs="+", default=[PAIRED_BASELINE], metavar="METHOD",
                        help=f"the paired tables' baselines (default {PAIRED_BASELINE})")
    args = parser.parse_args(argv)
    if args.quick:
        args.data, args.edits, args.size, args.limit = samples.FOLDER, 2, 256, 1
    args.out.mkdir(parents=True, exist_ok=True)
    methods = available_methods()
    if args.before_repo is not None:
        for model in ("moments", "simnet-small"):
            methods[f"before {model}"] = before_method(args.before_repo.resolve(), model)
    # an exported model folder (simnet export) is a method too, named by its path
    methods.update({name: engine_method(name) for name in args.methods or () if (Path(name) / "card.json").is_file()})
    if args.methods:
        unknown = set(args.methods) - set(methods)
        if unknown:
            sys.exit(f"unknown or unavailable methods: {', '.join(sorted(unknown))}; have {', '.join(methods)}")
        methods = {name: methods[name] for name in args.methods}
    features = FeatureMetrics()
    if not features.available:
        print("perceptual and Gram metrics: n/a (install the train extra for them)", file=sys.stderr)
    paths = [p for p in artworks(args.data) if not args.only or p.stem in args.only][: args.limit]
    if not paths:
        sys.exit(f"no artworks to score in {args.data}")
    rows, tiles = [], {name: [] for name in methods}
    started = time.perf_counter()
    for number, path in enumerate(paths):
        pixels, labels = load(path, args.size, args.max_regions)
        palette = regions.distinct_palette(int(labels.max()) + 1)
        for index, edit in enumerate(edit_module.make_edits(pixels, labels, args.edits, args.seed + number, args.kinds)):
            for name, method in methods.items():
                start = time.perf_counter()
                try:
                    image, predicted = method(edit.exemplar, edit.exemplar_labels, edit.target_labels)
                except MethodFailed as failure:
                    print(f"{path.stem} edit {index}, {name}: {failure}", file=sys.stderr)
                    continue
                seconds = time.perf_counter() - start
                rows.append({"artwork": path.stem, "edit": index, "kind": edit.kind, "method": name,
                             **score(edit, image, predicted, features), "seconds": seconds})
                if len(tiles[name]) < SHEET_ROWS:
                    tiles[name].append([imageio.to_rgb8(edit.exemplar), regions.colour_map(edit.target_labels, palette),
                                        imageio.to_rgb8(edit.ground_truth), imageio.to_rgb8(image)])
        print(f"[{number + 1}/{len(paths)}] {path.stem} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    with open(args.out / "edits.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["artwork", "edit", "kind", "method", *METRICS])
        writer.writeheader()
        writer.writerows(rows)
    for name in methods:
        slug = re.sub(r"[^\w.-]+", "_", name)  # "cut+paste+inpaint", a model folder's path
        contact_sheet(tiles[name], ("exemplar", "target map", "ground truth", name), args.out / f"contact_{slug}.png")
    header = (f"# Quality: {len(paths)} artworks from {args.data.name}, {args.edits} edits each "
              f"({', '.join(args.kinds)}), {args.size} px, seed {args.seed}\n\n"
              f"Command: `python bench/quality.py {shlex.join(argv if argv is not None else sys.argv[1:])}`\n\n")
    summary = header + summarise(rows, list(methods), args.paired_against) + per_kind(rows, list(methods), args.paired_against)
    (args.out / "summary.md").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
