"""A one-shot `simnet manipulate`, as a user runs it: a fresh process, files in and out.

    python bench/cli.py [--sizes 1024 4096] [--repeats 3] [--model MODEL]

For each size: the bundled painting scaled to it as PNG, and one moved region given both ways
the CLI takes it (two painted colour maps, and two masks), written once; then `simnet --quiet
manipulate` runs --repeats times per input kind, each in its own process. Prints the median
wall time (start-up, imports, model loading, decoding, the manipulation, encoding) and each
run's peak resident memory (the largest of the repeats). The inputs are made in a process of
their own, so this one stays small: a child's peak as the kernel reports it includes its
parent's at the time of the fork.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_inputs(size: int, folder: Path) -> None:
    """The files of one size (see `arguments`)."""
    import numpy as np

    from bench.speed import build_inputs
    from engine.io import imageio
    from engine.regions import colour_map

    _, labels, target = build_inputs(size, size, 2, folder)
    for name, label_map in (("regions.png", labels), ("target.png", target)):
        imageio.write_image(folder / name, colour_map(label_map) / 255.0)
    for name, label_map in (("source_mask.png", labels), ("target_mask.png", target)):
        imageio.write_image(folder / name, (label_map == 1).astype(np.float32))


def arguments(folder: Path) -> dict[str, list[str]]:
    """The CLI arguments of each input kind written by `write_inputs`."""
    exemplar = folder / "exemplar.png"
    return {
        "painted maps": [str(exemplar), "--regions", str(folder / "regions.png"), "--target", str(folder / "target.png")],
        "masks": [str(exemplar), "--source-mask", str(folder / "source_mask.png"), "--target-mask", str(folder / "target_mask.png")],
    }


def run_once(arguments: list[str], output: Path, model: str | None) -> tuple[float, float]:
    """Seconds and peak resident MB of one `simnet manipulate` process."""
    command = [sys.executable, "-m", "engine", "--quiet", "manipulate", *arguments, "-o", str(output)]
    if model:
        command += ["--model", model]
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1])
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4 (for its rusage): tell Popen
    if child.returncode != 0:
        raise SystemExit(f"simnet manipulate failed ({child.returncode}): {' '.join(command)}")
    return seconds, usage.ru_maxrss / 1024


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", help="default: the CLI's own default")
    parser.add_argument("--inputs", nargs=2, metavar=("SIZE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inputs:
        write_inputs(int(args.inputs[0]), Path(args.inputs[1]))
        return
    print(f"`simnet manipulate`, one moved region, fresh process each run, median of {args.repeats}\n")
    print("| size | input | seconds | peak RSS MB |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for size in args.sizes:
            folder = Path(scratch) / str(size)
            folder.mkdir()
            subprocess.run([sys.executable, __file__, "--inputs", str(size), str(folder)], check=True)
            for kind, kind_arguments in arguments(folder).items():
                runs = [run_once(kind_arguments, folder / "result.png", args.model) for _ in range(args.repeats)]
                seconds = statistics.median(r[0] for r in runs)
                print(f"| {size}x{size} | {kind} | {seconds:.2f} | {max(r[1] for r in runs):.0f} |", flush=True)


if __name__ == "__main__":
    main()
