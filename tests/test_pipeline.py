import numpy as np
import pytest

from engine import manipulate, manipulate_masks, run
from engine.edit import Edit
from engine.errors import InputError

from .conftest import figure_scene, square_mask, textured


def test_identity_edit_reproduces_the_exemplar():
    exemplar, figure = figure_scene()
    labels = figure.astype(np.int32)
    result = manipulate(exemplar, labels, labels)
    assert np.abs(result - exemplar).max() < 1e-5


def test_moved_square_leaves_its_place_and_arrives_whole():
    # The baseline's exact behaviour (an integer translation, pixel for pixel); the learned
    # model's is checked in test_learned.py.
    exemplar, figure = figure_scene()
    target = square_mask(120, 160, 100, 50, 30)
    result = manipulate_masks(exemplar, figure.astype(np.float32), target.astype(np.float32), model="moments")
    # arrived: the square's interior, pixel for pixel (an integer translation)
    assert np.abs(result[53:77, 103:127] - exemplar[43:67, 23:47]).max() < 1e-4
    # left: the old place now holds background values, not the bright square
    assert result[43:67, 23:47].max() < 0.45
    assert result.shape == exemplar.shape


def test_maps_at_another_scale_are_resized_and_other_shapes_refused():
    exemplar, figure = figure_scene()
    half = figure[::2, ::2].astype(np.int32)
    assert np.abs(manipulate(exemplar, half, half) - exemplar).max() < 1e-5
    with pytest.raises(InputError, match="80x59 but the exemplar is 160x120, a different shape"):
        manipulate(exemplar, half[:59], half[:59])


def test_bad_inputs_are_input_errors():
    exemplar, figure = figure_scene()
    labels = figure.astype(np.int32)
    nan = exemplar.copy()
    nan[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        manipulate(nan, labels, labels)
    with pytest.raises(InputError, match="no region of the target map"):
        manipulate(exemplar, labels, labels + 5)
    with pytest.raises(InputError, match="unknown model 'sota'"):
        manipulate(exemplar, labels, labels, model="sota")
    with pytest.raises(InputError, match="source mask is 10x10"):
        manipulate_masks(exemplar, np.ones((10, 10)), figure.astype(np.float32))
    with pytest.raises(InputError, match="must be"):
        manipulate(np.zeros((4, 4, 2), np.float32), labels[:4, :4], labels[:4, :4])


def test_hundreds_of_tiny_regions():
    exemplar = textured(60, 80)
    labels = np.arange(60 * 80).reshape(60, 80) // 12  # 400 regions of 12 px
    with pytest.raises(InputError, match="400 regions, more than the limit of 128"):
        manipulate(exemplar, labels, labels)
    result = manipulate(exemplar, labels, labels, max_regions=400)
    assert np.abs(result - exemplar).max() < 1e-4


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (7, 1), (31, 17)])
def test_tiny_and_odd_sized_images(shape):
    exemplar = textured(*shape, channels=1)
    labels = np.zeros(shape, np.int32)
    assert np.abs(manipulate(exemplar, labels, labels) - exemplar).max() < 1e-5


def test_region_that_vanishes_and_one_that_grows():
    exemplar, figure = figure_scene()
    labels = figure.astype(np.int32)
    labels[90:110, 120:150] = 2
    target = labels.copy()
    target[target == 2] = 0  # region 2 vanishes: the background covers it
    target[30:80, 10:60] = 1  # region 1 grows
    manipulation = run(exemplar, Edit(labels, target), provenance=True)
    assert sorted(manipulation.motions) == [0, 1]
    assert manipulation.provenance.kind.shape == labels.shape
    assert np.isfinite(manipulation.pixels).all()
    assert manipulation.pixels[30:80, 10:60].mean() > 0.6  # the grown region is made of the square


def test_progress_is_reported_to_completion():
    exemplar, figure = figure_scene()
    seen = []
    manipulate(exemplar, figure.astype(int), figure.astype(int), progress=lambda s, f: seen.append((s, f)))
    assert seen[-1] == ("transport", 1.0) and ("motion", 1.0) in seen


def test_soft_target_selection_keeps_its_feathered_edge():
    exemplar, figure = figure_scene()
    target = np.zeros((120, 160), np.float32)
    target[50:80, 100:130] = 1.0
    target[50:80, 96:100] = np.linspace(0.2, 0.8, 4)[None, :]  # a feathered left edge
    # moments: its background fill is the same in all three edits, so the mix can be computed
    soft = manipulate_masks(exemplar, figure.astype(np.float32), target, model="moments")
    hard = manipulate_masks(exemplar, figure.astype(np.float32), (target >= 0.5).astype(np.float32), model="moments")
    background = manipulate_masks(
        exemplar, figure.astype(np.float32), np.pad(np.ones((2, 2)), ((0, 118), (0, 158))).astype(np.float32), model="moments"
    )
    assert np.abs(soft[55:75, 105:125] - hard[55:75, 105:125]).max() < 1e-5  # inside: the same
    # on the feathered band the result mixes the moved region with the background by the mask
    column = 97  # coverage 0.4
    mix = 0.4 * hard[55:75, column] + 0.6 * background[55:75, column]
    assert np.abs(soft[55:75, column] - mix).max() < 0.05
