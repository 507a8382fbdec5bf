"""Shared test helpers: small synthetic paintings whose right answers are known, and a virtual
screen for the hosts' GUI tests."""

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_ART = REPO.parent / "shared" / "data" / "art"


def textured(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth but non-repeating float32 image: every pixel is distinguishable from its
    neighbours' positions, so misplaced samples show up as large errors."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    layers = []
    for _ in range(channels):
        fx, fy, phase = rng.uniform(0.02, 0.09, 2).tolist() + [rng.uniform(0, 6.28)]
        layers.append(0.5 + 0.25 * np.sin(fx * xs + phase) + 0.25 * np.cos(fy * ys + 0.7 * phase))
    return np.stack(layers, axis=2).astype(np.float32)


def square_mask(height: int, width: int, x0: int, y0: int, size: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[y0 : y0 + size, x0 : x0 + size] = True
    return mask


def figure_scene(height: int = 120, width: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """A bright square with a unique texture on a darker textured background: (exemplar, figure)."""
    exemplar = textured(height, width) * 0.3
    figure = square_mask(height, width, 20, 40, 30)
    exemplar[figure] = 0.7 + 0.3 * textured(height, width, seed=5)[figure]
    return exemplar, figure


def registry_reachable(folder: Path) -> bool:
    """Whether pip can fetch from the package registry here (installing the engine needs it)."""
    try:
        fetched = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(folder),
                                  "tqdm"], capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        return False
    return fetched.returncode == 0


@pytest.fixture
def shared_art() -> Path:
    if not SHARED_ART.is_dir():
        pytest.skip("../shared/data/art is not beside this checkout")
    return SHARED_ART


def normalised_grid(height: int, width: int) -> np.ndarray:
    """Normalised coordinates of every pixel centre, built from arange. -> (H, W, 2), x first."""
    xs = (2.0 * np.arange(width) + 1.0) / width - 1.0
    ys = (2.0 * np.arange(height) + 1.0) / height - 1.0
    grid = np.empty((height, width, 2))
    grid[:, :, 0] = xs[None, :]
    grid[:, :, 1] = ys[:, None]
    return grid


def sampling_fields(affines: np.ndarray, height: int, width: int) -> np.ndarray:
    """Evaluate motions at every pixel of a height x width target, as grid_sample grids.

    affines: (M, 2, 3) normalised. Returns (M, H, W, 2) float32 normalised sampling positions.
    The engine warps with the affine matrices directly (cheaper, same values); this explicit
    form is what the networks consume and what tests compare against.
    """
    grid = normalised_grid(height, width)
    fields = np.einsum("mij,hwj->mhwi", affines[:, :, :2], grid) + affines[:, None, None, :, 2]
    return fields.astype(np.float32)


@contextlib.contextmanager
def virtual_screen(width: int, height: int) -> Iterator[str]:
    """A real Xvfb server on a free display, named by the server once it is ready (no fixed
    number, no stale lock, and no start-up race as with xvfb-run under load): yields ":N". It is
    stopped with SIGTERM, so it removes its own lock and socket."""
    ready, told = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(told), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(told,))
    os.close(told)
    try:
        with os.fdopen(ready) as answer:
            number = answer.readline().strip()
        assert number.isdigit(), "Xvfb did not start"
        yield f":{number}"
    finally:
        xvfb.terminate()
        try:
            xvfb.wait(timeout=10)
        except subprocess.TimeoutExpired:
            xvfb.kill()
