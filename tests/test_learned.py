"""The shipped learned model (`simnet-small`) through the engine (ONNX Runtime, no torch): the properties an
artist relies on, whatever the weights."""

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from engine import manipulate, manipulate_masks, run
from engine.edit import Edit
from engine.models import LEARNED_MODEL, default_model, shipped_models
from engine.models.learned import CHUNK

from .conftest import figure_scene, square_mask, textured

pytestmark = pytest.mark.skipif(LEARNED_MODEL not in shipped_models(), reason="no learned model shipped")


def test_it_is_the_default_and_the_baseline_stays_selectable():
    from engine.models import model_names

    assert {LEARNED_MODEL, "moments"} <= set(model_names())
    assert default_model()[0] == LEARNED_MODEL  # onnxruntime is installed here (this module needs it)


def test_without_onnx_runtime_the_default_is_the_baseline_with_a_note():
    import subprocess
    import sys

    code = ("import importlib.util, sys; real = importlib.util.find_spec; "
            "importlib.util.find_spec = lambda n, *a: None if n == 'onnxruntime' else real(n, *a); "
            "from engine.models import default_model; print(default_model()[0]); print(default_model()[1])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "moments" and "pip install 'simnet-manipulate[cpu]'" in out[1]


def test_identity_edit_is_exact():
    exemplar, figure = figure_scene()
    labels = figure.astype(np.int32)
    assert np.abs(manipulate(exemplar, labels, labels, model=LEARNED_MODEL) - exemplar).max() < 1e-5


def test_moved_square_arrives_and_leaves():
    exemplar, figure = figure_scene()
    target = square_mask(120, 160, 100, 50, 30)
    result = manipulate_masks(exemplar, figure.astype(np.float32), target.astype(np.float32), model=LEARNED_MODEL)
    arrived = result[55:75, 105:125]
    assert arrived.mean() > 0.65  # the bright square's pixels, not background
    assert result[45:65, 25:45].max() < 0.45  # its old place holds background texture
    # made of the exemplar's own values: nothing outside the picture's range
    assert result.min() >= exemplar.min() - 1e-4 and result.max() <= exemplar.max() + 1e-4


@pytest.mark.parametrize("channels", [1, 4])
def test_grey_and_transparent_exemplars(channels):
    exemplar, figure = figure_scene()
    if channels == 1:
        pixels = exemplar[:, :, :1]
    else:
        pixels = np.concatenate([exemplar, np.full(exemplar.shape[:2] + (1,), 0.5, np.float32)], axis=2)
    target = square_mask(120, 160, 90, 50, 30)
    result = manipulate_masks(pixels, figure.astype(np.float32), target.astype(np.float32), model=LEARNED_MODEL)
    assert result.shape == pixels.shape and np.isfinite(result).all()
    if channels == 4:
        assert np.allclose(result[:, :, 3], 0.5, atol=1e-4)  # alpha carried, never guided


def test_more_regions_than_one_graph_batch():
    exemplar = textured(96, 128)
    labels = (np.arange(128)[None, :] // (128 // (CHUNK + 4))).repeat(96, axis=0).astype(np.int32)
    shifted = np.roll(labels, 2, axis=1)  # every region changes: every one goes through the graphs
    result = run(exemplar, Edit(labels, shifted), model=LEARNED_MODEL)
    assert len(result.motions) == labels.max() + 1 > CHUNK
    assert all(m.keypoints_src.shape[0] > 0 for m in result.motions.values())
    assert result.pixels.shape == exemplar.shape and np.isfinite(result.pixels).all()


def test_unchanged_regions_stay_without_the_networks():
    exemplar, figure = figure_scene()
    labels = figure.astype(np.int32)
    result = run(exemplar, Edit(labels, labels), model=LEARNED_MODEL)
    assert all(m.affines.shape == (1, 2, 3) for m in result.motions.values())
