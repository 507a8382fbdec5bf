"""One edit, every layer: a solved edit replayed on other layers (engine.replay), one property
per test, on small synthetic scenes."""

import numpy as np
import pytest

from engine import InputError, apply, replay, run, solve
from engine.compose import compose
from engine.edit import Edit
from engine.motion import IDENTITY, RegionMotion, pixel_to_normalised_affines

from .conftest import figure_scene, square_mask, textured

MODELS = ("moments", "simnet-small")
HEIGHT, WIDTH = 120, 160


def _move_scene():
    """A textured figure moved right on a textured background (the place it left is filled)."""
    exemplar, figure = figure_scene(HEIGHT, WIDTH)
    labels = figure.astype(np.int32)
    target = np.zeros_like(labels)
    target[square_mask(HEIGHT, WIDTH, 90, 40, 30)] = 1
    return exemplar, labels, target


def _hole(solved) -> np.ndarray:
    """The solved edit's filled pixels on the whole image (H, W) bool."""
    hole = np.zeros(solved.shape, bool)
    hole[solved.crop] = solved.hole
    return hole


@pytest.mark.parametrize("model", MODELS)
def test_layers_that_sum_to_the_picture_give_results_that_sum_to_its_result(model):
    exemplar, labels, target = _move_scene()
    solved = solve(exemplar, Edit(labels, target), model)
    share = np.random.default_rng(0).random((HEIGHT, WIDTH, 1)).astype(np.float32)
    lines, colours = exemplar * share, exemplar * (1 - share)
    whole = apply(solved, exemplar)
    outside_fill = ~_hole(solved)
    assert _hole(solved).any()  # the place the figure left is filled
    together = apply(solved, lines) + apply(solved, colours)
    assert np.abs(together - whole)[outside_fill].max() < 1 / 65535


def test_a_replayed_rigid_move_equals_the_engines_own_result_where_it_warped():
    exemplar, labels, target = _move_scene()
    result = run(exemplar, Edit(labels, target), "moments", solved=True)
    replayed = apply(result.solved, exemplar)
    warped = (result.kind == 1) & ~_hole(result.solved)
    assert warped.sum() > 500
    assert np.array_equal(replayed[warped], result.pixels[warped])
    # and the figure is where the target map says, made of the figure's pixels
    assert np.array_equal(replayed[40:70, 90:120], exemplar[40:70, 20:50])


def test_outside_the_edit_the_layer_is_returned_bit_for_bit():
    exemplar, labels, target = _move_scene()
    solved = solve(exemplar, Edit(labels, target), "moments")
    layer = textured(HEIGHT, WIDTH, 4, seed=9)
    replayed = apply(solved, layer)
    zone = np.zeros((HEIGHT, WIDTH), bool)
    zone[solved.crop] = solved.zone
    assert zone.mean() < 0.6
    assert np.array_equal(replayed[~zone], layer[~zone])
    assert np.array_equal(layer, textured(HEIGHT, WIDTH, 4, seed=9))  # the layer itself is not touched


def test_filled_pixels_take_the_same_source_in_every_layer():
    exemplar, labels, target = _move_scene()
    solved = solve(exemplar, Edit(labels, target), "moments")
    hole = _hole(solved)
    # a layer that is the painting at half strength gets half the painting's result, fill included
    # (the same sources, and a tone correction made from its own, halved, boundary)
    full, half = apply(solved, exemplar), apply(solved, exemplar * 0.5)
    assert np.abs(half[hole] - 0.5 * full[hole]).max() < 1e-5
    # a dot at one filled pixel's source shows at that pixel, in a layer that is otherwise empty
    rows, cols = np.nonzero(solved.hole)
    pick = len(rows) // 2
    x0, y0 = solved.box[:2]
    source = y0 + rows[pick] + solved.fill_dy[rows[pick], cols[pick]], x0 + cols[pick] + solved.fill_dx[rows[pick], cols[pick]]
    dot = np.zeros((HEIGHT, WIDTH, 3), np.float32)
    dot[source] = 1.0
    assert apply(solved, dot)[y0 + rows[pick], x0 + cols[pick]].min() > 0.9


def test_a_one_pixel_line_stays_crisp_and_transparent_places_stay_transparent():
    exemplar, labels, target = _move_scene()
    solved = solve(exemplar, Edit(labels, target), "moments")
    line_art = np.zeros((HEIGHT, WIDTH, 4), np.float32)  # transparent, with an ink line in the figure
    line_art[55, 24:46] = (0.1, 0.05, 0.0, 1.0)
    replayed = apply(solved, line_art)
    # the line moved with the figure, one pixel thick, its ink and opacity exactly kept
    assert np.allclose(replayed[55, 94:116], (0.1, 0.05, 0.0, 1.0), atol=1e-6)
    assert np.abs(replayed[54, 94:116, 3]).max() < 1e-6 and np.abs(replayed[56, 94:116, 3]).max() < 1e-6
    # the place it left is as transparent as the rest of the layer there
    assert replayed[40:70, 20:50, 3].max() < 1e-6
    assert (replayed[:, :, 3] > 0.5).sum() == 22


def test_a_fractional_translation_replays_whole_pixels():
    exemplar, labels, target = _move_scene()
    shift = np.array([[1.0, 0.0, -70.4], [0.0, 1.0, 0.0]])  # pulls from 70.4 px to the left
    motions = {
        0: RegionMotion(IDENTITY[None].copy(), np.ones((1, 4, 4), np.float32), (0, 0, WIDTH, HEIGHT), np.zeros((0, 2)), np.zeros((0, 2))),
        1: RegionMotion(
            pixel_to_normalised_affines(shift[None], HEIGHT, WIDTH),
            np.ones((1, 4, 4), np.float32),
            (0, 0, WIDTH, HEIGHT),
            np.zeros((0, 2)),
            np.zeros((0, 2)),
        ),
    }
    solved = compose(exemplar, labels, target, motions, want_solved=True).solved
    moves = solved.alpha > 0
    assert moves.sum() > 800
    assert (solved.shift_x[moves] == -70 * replay.SHIFT_STEPS).all()  # 70.4 px, as a whole pixel


@pytest.mark.parametrize("model", MODELS)
def test_a_saved_edit_reloaded_gives_byte_identical_results(model, tmp_path):
    exemplar, labels, target = _move_scene()
    solved = solve(exemplar, Edit(labels, target), model)
    replay.save(solved, tmp_path / "edit.npz")
    again = replay.load(tmp_path / "edit.npz")
    layer = textured(HEIGHT, WIDTH, 4, seed=2)
    assert apply(again, layer).tobytes() == apply(solved, layer).tobytes()
    assert (tmp_path / "edit.npz").stat().st_size < 200_000


def test_an_edit_that_changes_nothing_replays_as_the_layer():
    exemplar, labels, _ = _move_scene()
    solved = solve(exemplar, Edit(labels, labels), "moments")
    layer = textured(HEIGHT, WIDTH, 3, seed=4)
    assert np.array_equal(apply(solved, layer), layer)
    assert np.array_equal(apply(replay.from_bytes(replay.to_bytes(solved)), layer), layer)


def test_the_same_composition_at_twice_the_size_replays_the_same_move():
    exemplar, labels, target = _move_scene()
    solved = solve(exemplar, Edit(labels, target), "moments")
    bigger = replay.resized(solved, 2 * HEIGHT, 2 * WIDTH)
    large = np.kron(exemplar, np.ones((2, 2, 1), np.float32))
    result = apply(bigger, large)
    # the figure moved twice as far (its anti-aliased edge, resampled, is softer)
    assert np.array_equal(result[82:138, 182:238], large[82:138, 42:98])
    with pytest.raises(InputError, match="different shape"):
        replay.resized(solved, HEIGHT, 2 * WIDTH)


def test_a_layer_of_another_size_is_refused_with_what_to_do():
    exemplar, labels, target = _move_scene()
    solved = solve(exemplar, Edit(labels, target), "moments")
    with pytest.raises(InputError, match="solved on a 160x120 image"):
        apply(solved, np.zeros((60, 80, 3), np.float32))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda values: values.pop("alpha"), "has no alpha"),
        (lambda values: values.update(alpha=values["alpha"].astype(np.float64)), "alpha is float64"),
        (lambda values: values.update(box=np.array([0, 0, 999, 999])), "not inside"),
        (lambda values: values.update(version=np.array(99)), "version 99"),
        (lambda values: values.update(format=np.array("something else")), "not a solved edit"),
        (lambda values: values.update(fill_dx=np.where(values["hole"], 10**6, 0).astype(np.int32)), "outside the image"),
        (lambda values: values.update(alpha=np.full_like(values["alpha"], np.nan)), "NaN"),
        (lambda values: values.update(shift_x=np.full_like(values["shift_x"], 1 << 30)), "beyond"),
    ],
)
def test_a_damaged_or_foreign_file_is_refused_with_a_message(damage, message, tmp_path):
    import io

    exemplar, labels, target = _move_scene()
    data = replay.to_bytes(solve(exemplar, Edit(labels, target), "moments"))
    with np.load(io.BytesIO(data)) as stored:
        values = {key: stored[key] for key in stored.files}
    damage(values)
    path = tmp_path / "edit.npz"
    np.savez(path, **values)
    with pytest.raises(InputError, match=message):
        replay.load(path)


def test_a_file_that_is_not_an_npz_is_refused(tmp_path):
    path = tmp_path / "edit.npz"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(InputError, match="not a solved edit"):
        replay.load(path)
    with pytest.raises(InputError, match="does not exist"):
        replay.load(tmp_path / "missing.npz")


def test_ink_that_touches_the_hole_is_not_smeared_into_it():
    exemplar, labels, target = _move_scene()
    solved = solve(exemplar, Edit(labels, target), "moments")
    hole = _hole(solved)
    left = np.nonzero(hole.any(axis=0))[0].min()
    line_art = np.zeros((HEIGHT, WIDTH, 4), np.float32)
    line_art[35:75, left - 1] = (0.0, 0.0, 0.0, 1.0)  # ink just outside the place the figure left
    replayed = apply(solved, line_art)
    # transparent it was and transparent it stays (a tone correction made from the ink spread
    # a grey shadow over a quarter of it)
    assert replayed[hole, 3].mean() < 0.01
    assert np.array_equal(replayed[35:75, left - 1], line_art[35:75, left - 1])
