"""The full-resolution blend graph in real ONNX Runtime (CPU provider here: the same graph and
the same IO binding calls a GPU runs, on host memory) against OpenCV's blend."""

import shutil

import numpy as np
import pytest

from engine import blend, masks
from engine.errors import InputError
from engine.models import MomentsModel, load_model
from engine.runtime import blend_graph

from .conftest import textured
from .test_blend import IDENTITY, moved_region_scene

pytest.importorskip("onnxruntime")

ROTATED = [[0.97, 0.12, -10.0], [-0.1, 1.03, 20.0]]
SHIFTED = [[1.0, 0, 7.3], [0, 1.0, -3.6]]


@pytest.fixture
def graph():
    return blend_graph.blend_graph(["CPUExecutionProvider"])


@pytest.fixture(autouse=True)
def no_override(monkeypatch):
    monkeypatch.delenv("SIMNET_BLEND", raising=False)


def test_shipped_graph_is_what_the_builder_writes(tmp_path):
    pytest.importorskip("onnx")
    from export import blend_graph as builder

    written = builder.write(tmp_path)
    assert written.read_bytes() == (blend_graph.FOLDER / blend_graph.FILE).read_bytes()
    assert (tmp_path / "card.json").read_text() == (blend_graph.FOLDER / "card.json").read_text()


def test_sampling_thetas_map_pixel_centres_to_grid_sample_coordinates():
    height, width = 30, 40
    thetas = blend_graph.sampling_thetas(np.array([IDENTITY, SHIFTED]), height, width)
    corners = np.array([[0, 0, 1], [width - 1, height - 1, 1]], float)
    identity = corners @ thetas[0].T
    assert np.allclose(identity, [[-1 + 1 / width, -1 + 1 / height], [1 - 1 / width, 1 - 1 / height]], atol=1e-6)
    shifted = corners[:1] @ thetas[1].T  # pixel (0, 0) pulls from (7.3, -3.6)
    assert np.allclose(shifted, [[(2 * 7.3 + 1) / width - 1, (2 * -3.6 + 1) / height - 1]], atol=1e-6)


@pytest.mark.parametrize("grid_box", [(0, 0, 40, 30), (-5.5, 2.0, 33.0, 28.5)])
def test_grid_theta_samples_weights_where_upsample_weights_does(grid_box, graph):
    height, width = 30, 40
    weights = np.random.default_rng(2).random((1, 6, 9)).astype(np.float32)
    band = (3, 4, 37, 20)
    expected = blend.upsample_weights(weights[0], grid_box, band)
    # Motion 0 samples a pixel of value 1 everywhere, motion 1 a pixel of value 0, with the
    # weights w and 1 - w: the blend is the upsampled w.
    halves = np.zeros((height, width, 1), np.float32)
    halves[:, width // 2 :] = 1.0
    placed = graph.region(graph.place_exemplar(halves), np.ones((height, width), np.float32))
    to_right, to_left = [[0.0, 0, 30.0], [0, 0.0, 5.0]], [[0.0, 0, 5.0], [0, 0.0, 5.0]]
    blended = placed.blend(np.array([to_right, to_left]), np.concatenate([weights, 1 - weights]), grid_box, band)[:, :, 0]
    assert np.abs(blended - expected).max() < 5e-3  # OpenCV's coordinates step by 1/32 pixel


@pytest.mark.parametrize(
    "affines", [[IDENTITY], [SHIFTED], [IDENTITY, SHIFTED, ROTATED]], ids=["identity", "shift", "three"]
)
@pytest.mark.parametrize("whole_mask", [True, False], ids=["whole", "region"])
def test_graph_blend_matches_opencv(affines, whole_mask, graph):
    height, width = 300, 400
    exemplar = textured(height, width, 4)
    mask = np.ones((height, width), bool)
    if not whole_mask:
        mask[:] = False
        mask[40:260, 60:350] = True
    source = masks.region_interior(mask)
    affines = np.array(affines, float)
    weights = np.random.default_rng(1).random((len(affines), 32, 32)).astype(np.float32)
    weights /= weights.sum(0)
    grid_box, band = (20.0, 10.0, 380.0, 290.0), (30, 50, 390, 178)
    expected, _ = blend.blend_band(exemplar, source, affines, weights, list(range(len(affines))), grid_box, band, False)
    placed = graph.region(graph.place_exemplar(exemplar), source)
    got = placed.blend(affines, weights, grid_box, band)
    assert got.shape == expected.shape == (128, 360, 4)
    assert np.abs(got - expected).max() < 5e-4


def test_motions_without_support_in_the_band_are_left_out(graph):
    height, width = 200, 120
    exemplar = textured(height, width, 3)
    source = np.ones((height, width), np.float32)
    weights = np.zeros((2, 20, 12), np.float32)
    weights[0, :10], weights[1, 10:] = 1.0, 1.0  # motion 0 only on top, motion 1 only below
    affines = np.array([IDENTITY, SHIFTED])
    placed = graph.region(graph.place_exemplar(exemplar), source)
    top = (0, 0, width, 40)
    assert np.abs(placed.blend(affines, weights, (0, 0, width, height), top) - exemplar[:40]).max() < 1e-5
    nowhere = np.zeros_like(weights)
    assert not placed.blend(affines, nowhere, (0, 0, width, height), top).any()


def test_composite_on_the_graph_matches_opencv(graph):
    exemplar, labels, target, motions = moved_region_scene(260, 150)
    expected = blend.composite(exemplar, labels, target, motions).pixels
    got = blend.composite(exemplar, labels, target, motions, graph=graph).pixels
    assert np.abs(got - expected).max() < 5e-4
    explained = blend.composite(exemplar, labels, target, motions, want_dominant=True, graph=graph)
    assert explained.dominant_motion is not None  # explaining needs OpenCV's dominant motion


def test_cpu_sessions_blend_with_opencv_unless_told(monkeypatch):
    assert blend_graph.choose_blend(MomentsModel()) is None
    learned = load_model("simnet-small", "cpu")
    assert blend_graph.choose_blend(learned) is None
    monkeypatch.setenv("SIMNET_BLEND", "graph")
    chosen = blend_graph.choose_blend(learned)
    assert isinstance(chosen, blend_graph.BlendGraph) and chosen.provider == "CPUExecutionProvider"
    monkeypatch.setenv("SIMNET_BLEND", "opencv")
    assert blend_graph.choose_blend(learned) is None
    monkeypatch.setenv("SIMNET_BLEND", "gpu")
    with pytest.raises(InputError, match="SIMNET_BLEND is 'gpu'"):
        blend_graph.choose_blend(learned)


def test_measure_times_both_once_per_provider(graph):
    first = blend_graph.measure(graph, width=256, band_count=1, repeats=1)
    assert first.opencv > 0 and first.graph > 0 and first.provider == "CPUExecutionProvider"
    assert blend_graph.measure(graph) is first


def test_a_damaged_blend_graph_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "graphs"
    shutil.copytree(blend_graph.FOLDER, folder)
    monkeypatch.setattr(blend_graph, "FOLDER", folder)
    path = folder / blend_graph.FILE
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(InputError, match="damaged"):
        blend_graph.BlendGraph(["CPUExecutionProvider"])
    (folder / "card.json").write_text("{")
    with pytest.raises(InputError, match="card"):
        blend_graph.BlendGraph(["CPUExecutionProvider"])
