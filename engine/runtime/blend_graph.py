"""The full-resolution blend of a region's motions as an ONNX graph, for GPUs.

engine/graphs/blend.onnx (built by export/blend_graph.py) computes what engine.blend.blend_band
does with OpenCV, one band at a time. On a GPU the exemplar and the region's mask are copied to
the device once (IO binding) and each band sends only its motions and fetches its pixels. It
agrees with OpenCV to a few 1e-4 except where a motion samples outside the image: GridSample
reflects about the image's edge, OpenCV about its edge pixel (one pixel apart).

Which one runs is measured, not assumed (`choose_blend`): on the CPU, OpenCV is 57-77x faster
than an ONNX graph for a single warp and 13-15x for a region's whole transport (bench/warp.py,
bench/results/warp.md), so a CPU session never uses it; where the model runs on a GPU, both are
timed once per process on a probe region and the faster is kept (`simnet doctor` prints the
figures). SIMNET_BLEND=opencv or =graph overrides.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..blend import BAND_ROWS, band_support, blend_band
from ..errors import InputError
from . import sessions

FOLDER = Path(__file__).resolve().parents[1] / "graphs"
FILE = "blend.onnx"
CHOICES = ("auto", "opencv", "graph")
# The providers the blend graph runs on, and where its inputs are placed. Not TensorRT: it builds
# an engine for every new input shape, and bands change shape (CUDA runs it instead); not
# DirectML or CoreML, which this project has no machine to test.
DEVICE_OF_PROVIDER = {"CUDAExecutionProvider": "cuda", "CPUExecutionProvider": "cpu"}

_lock = threading.Lock()
_graphs: dict[tuple, BlendGraph] = {}
_measured: dict[str, Timing] = {}


@dataclass(frozen=True)
class Timing:
    """Seconds for the probe region's blend with OpenCV and with the graph on `provider`."""

    opencv: float
    graph: float
    provider: str

    @property
    def graph_is_faster(self) -> bool:
        return self.graph < self.opencv


class BlendGraph:
    """The blend graph in one ONNX Runtime session on the first usable provider of `providers`."""

    def __init__(self, providers: list[str]):
        ort = sessions.onnxruntime()
        card_path = FOLDER / sessions.CARD
        try:
            card = json.loads(card_path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"the blend graph's card {card_path} is missing or damaged ({error}); reinstall the engine") from None
        expected = card.get("sha256", {}).get(FILE) if isinstance(card, dict) and isinstance(card.get("sha256"), dict) else None
        if not isinstance(expected, str):
            raise InputError(f"the blend graph's card {card_path} lists no checksum for {FILE}; reinstall the engine")
        providers = [p for p in providers if p in DEVICE_OF_PROVIDER] or ["CPUExecutionProvider"]
        self.session = sessions.verified_session(ort, FOLDER, FILE, expected, providers)
        self.provider = self.session.get_providers()[0]
        self.device = DEVICE_OF_PROVIDER.get(self.provider, "cpu")
        self._ort = ort

    def place(self, array: np.ndarray):
        """`array` as float32 on the session's device (an OrtValue), to bind without copying again."""
        return self._ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array, np.float32), self.device, 0)

    def place_exemplar(self, exemplar: np.ndarray):
        """exemplar (H, W, C) -> on the device as planes (1, C, H, W)."""
        return self.place(np.moveaxis(exemplar, 2, 0)[None])

    def region(self, placed_exemplar, source_mask: np.ndarray) -> PlacedRegion:
        """One region ready to blend band by band: source_mask (H, W) float32 (see
        engine.masks.region_interior) goes to the device once, beside the placed exemplar."""
        return PlacedRegion(self, placed_exemplar, self.place(source_mask[None, None]))

    def run(self, placed_exemplar, placed_mask, feeds: dict[str, np.ndarray]) -> np.ndarray:
        binding = self.session.io_binding()
        binding.bind_ortvalue_input("exemplar", placed_exemplar)
        binding.bind_ortvalue_input("source_mask", placed_mask)
        for name, array in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array, np.float32))
        binding.bind_output("colour", "cpu")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]


@dataclass
class PlacedRegion:
    """A region's exemplar (1, C, H, W) and mask (1, 1, H, W) on the graph's device."""

    graph: BlendGraph
    exemplar: Any  # OrtValue
    mask: Any

    def blend(self, affines: np.ndarray, weight_grids: np.ndarray, grid_box, band) -> np.ndarray:
        """As engine.blend.blend_band: affines (M, 2, 3) pulling, in pixels; weight_grids (M, h, w)
        spanning grid_box; band (x0, y0, x1, y1) -> pixels (band h, band w, C) float32."""
        x0, y0, x1, y1 = band
        keep = [m for m in range(len(affines)) if band_support(weight_grids[m], grid_box, band) is not None]
        _, channels, height, width = self.exemplar.shape()
        if not keep:
            return np.zeros((y1 - y0, x1 - x0, channels), np.float32)
        feeds = {
            "weights": weight_grids[keep][None],
            "motion_theta": sampling_thetas(affines[keep], height, width),
            "weight_theta": grid_theta(grid_box)[None],
            "columns": np.arange(x0, x1, dtype=np.float32),
            "rows": np.arange(y0, y1, dtype=np.float32),
        }
        return self.graph.run(self.exemplar, self.mask, feeds)


def sampling_thetas(pixel_affines: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pulling motions (M, 2, 3) from output pixel (x, y, 1) to exemplar pixels -> (M, 2, 3)
    from output pixel to GridSample's coordinates in an image of height x width
    (align_corners=0: g = (2 p + 1) / size - 1)."""
    scale = np.array([2.0 / width, 2.0 / height])
    thetas = pixel_affines.astype(np.float64) * scale[None, :, None]
    thetas[:, :, 2] += scale / 2 - 1.0
    return thetas.astype(np.float32)


def grid_theta(grid_box) -> np.ndarray:
    """Output pixel (x, y, 1) -> GridSample coordinates in a weight grid spanning grid_box
    (x0, y0, x1, y1) in pixel edges: the sampling of engine.blend.upsample_weights. (2, 3)."""
    gx0, gy0, gx1, gy1 = grid_box
    sx, sy = 2.0 / (gx1 - gx0), 2.0 / (gy1 - gy0)
    return np.array([[sx, 0.0, (0.5 - gx0) * sx - 1.0], [0.0, sy, (0.5 - gy0) * sy - 1.0]], np.float32)


def blend_graph(providers: list[str]) -> BlendGraph:
    """The cached blend graph session for `providers`."""
    key = tuple(dict.fromkeys(providers))
    with _lock:
        if key not in _graphs:
            _graphs[key] = BlendGraph(list(key))
        return _graphs[key]


def choose_blend(model) -> BlendGraph | None:
    """The blend graph to composite `model`'s results with, or None for OpenCV (see the module
    docstring). SIMNET_BLEND: auto (default), opencv, graph."""
    choice = os.environ.get("SIMNET_BLEND", "auto")
    if choice not in CHOICES:
        raise InputError(f"SIMNET_BLEND is '{choice}'; use one of: {', '.join(CHOICES)}")
    if choice == "opencv":
        return None
    if choice == "graph":
        ort = sessions.onnxruntime()
        return blend_graph(sessions.choose_providers(getattr(model, "device", "auto"), ort.get_available_providers()))
    graphs = getattr(getattr(model, "backend", None), "graphs", None)  # a learned model's sessions
    return None if graphs is None else faster_beside(graphs)


def beside(graphs: sessions.Graphs) -> BlendGraph:
    """The blend graph on the provider that runs a model's sessions `graphs` (or the CPU)."""
    return blend_graph([graphs.provider, "CPUExecutionProvider"])


def faster_beside(graphs: sessions.Graphs) -> BlendGraph | None:
    """The blend graph on the device of a model's sessions `graphs` if it is measured faster
    than OpenCV there; None (OpenCV) on the CPU, where it is not (the module docstring)."""
    if not graphs.on_gpu:
        return None
    graph = beside(graphs)
    if graph.provider == "CPUExecutionProvider":
        return None
    return graph if measure(graph).graph_is_faster else None


def measure(graph: BlendGraph, width: int = 1024, band_count: int = 2, repeats: int = 3) -> Timing:
    """Time OpenCV's blend and the graph's on a probe region: `band_count` full bands of an RGBA
    image `width` pixels wide, three motions (the size of one band of a 1024 px image; a GPU
    gains more on wider ones). Once per provider and process."""
    if graph.provider in _measured:
        return _measured[graph.provider]
    height = band_count * BAND_ROWS
    exemplar = np.random.default_rng(0).random((height, width, 4), dtype=np.float32)
    mask = np.ones((height, width), np.float32)
    affines = np.array([[[1, 0, 0], [0, 1, 0]], [[1, 0, 7.5], [0, 1, -3.25]], [[0.98, 0.17, -20], [-0.17, 0.98, 90]]], np.float64)
    weights = np.full((3, 64, 64), 1 / 3, np.float32)
    grid_box = (0, 0, width, height)
    bands = [(0, top, width, top + BAND_ROWS) for top in range(0, height, BAND_ROWS)]
    placed = graph.region(graph.place_exemplar(exemplar), mask)

    def opencv():
        for band in bands:
            blend_band(exemplar, mask, affines, weights, [0, 1, 2], grid_box, band, False)

    def on_graph():
        for band in bands:
            placed.blend(affines, weights, grid_box, band)

    timing = Timing(_best_seconds(opencv, repeats), _best_seconds(on_graph, repeats), graph.provider)
    _measured[graph.provider] = timing
    return timing


def _best_seconds(function, repeats: int) -> float:
    function()  # warm-up: kernels, allocations
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best
