"""What each install downloads: the wheels pip picks for the engine and each extra, here.

    python bench/install_size.py [--out FILE]    # default: bench/results/install_size.md

For each install (the engine alone, with the CPU or the GPU runtime, with training, and the
README's whole test environment) pip resolves it without installing anything (`pip install
--dry-run --ignore-installed --report`), and each chosen file's size is read: a local file's from
the disk, a registry's from its Content-Length. The engine's own wheel is built here and counted
too. The figures are for this machine's platform and Python (Linux x86-64, CPython 3.11), with
torch resolved to the CPU build these machines carry (`torch==2.13.0`; from PyTorch's CPU index
it is about the same size, while the default index's CUDA build is several GB).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUTPUT = Path(__file__).resolve().parent / "results" / "install_size.md"
INSTALLS = {
    "the engine alone (moments only)": "",
    "engine + CPU runtime (`[cpu]`, the learned model)": "cpu",
    "engine + GPU runtime (`[gpu]`)": "gpu",
    "engine + CPU runtime + training (`[cpu,train]`)": "cpu,train",
    "the README's test environment (`[cpu,train,bench,test,ray,lint]`)": "cpu,train,bench,test,ray,lint",
}


def file_size(url: str) -> int:
    """The size in bytes of a file pip would fetch: from the disk, or the registry's answer."""
    if url.startswith("file://"):
        return Path(urllib.request.url2pathname(url[len("file://"):])).stat().st_size
    request = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(request, timeout=60) as answer:
        return int(answer.headers["Content-Length"])


def resolved(extras: str) -> list[tuple[str, int]]:
    """(name, bytes) of every file pip picks for the engine with `extras`, the engine's own excepted."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        spec = f"{ROOT}[{extras}]" if extras else str(ROOT)
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                               "--report", str(report), spec], capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"pip could not resolve {spec}: {done.stderr[-1500:]}")
        chosen = json.loads(report.read_text())["install"]
    return [(item["metadata"]["name"], file_size(item["download_info"]["url"]))
            for item in chosen if not item["download_info"].get("dir_info")]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    from engine.app.install import engine_wheel

    with tempfile.TemporaryDirectory() as folder:
        engine = engine_wheel(Path(folder)).stat().st_size
    lines = [
        f"# What each install downloads: {platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "",
        "Command: `python bench/install_size.py`",
        "",
        f"The engine's own wheel (code, the shipped model and the sample): {engine / 1e6:.1f} MB, counted in each row.",
        "",
        "| install | packages | download MB | largest |",
        "|---|---|---|---|",
    ]
    for title, extras in INSTALLS.items():
        files = resolved(extras)
        total = engine + sum(size for _, size in files)
        largest = ", ".join(f"{name} {size / 1e6:.0f}" for name, size in sorted(files, key=lambda f: -f[1])[:3])
        lines.append(f"| {title} | {len(files) + 1} | {total / 1e6:.0f} | {largest} |")
        print(lines[-1], file=sys.stderr)
    summary = "\n".join(lines) + "\n"
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
