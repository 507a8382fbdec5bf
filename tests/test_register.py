"""Label-map registration (engine.register): a known thin-plate warp of a map is recovered near
its regions' outlines, the map does not fold, and the pipeline gives it to a re-layout."""

import cv2
import numpy as np

from engine.edit import Edit
from engine.pipeline import run
from engine.register import bending_operator, bilinear_basis, register_maps, soft_channels
from engine.thin_plate import ThinPlate

HEIGHT, WIDTH = 240, 320


def _layout() -> np.ndarray:
    """A ground line, a hill on it and three figures: (H, W) int32 labels 0..5."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    labels = np.zeros((HEIGHT, WIDTH), np.int32)
    labels[ys > 160 + 12 * np.sin(xs / 40)] = 1
    labels[((xs - 230) / 70) ** 2 + ((ys - 165) / 45) ** 2 < 1] = 2
    for index, (cx, cy, rx, ry) in enumerate([(80, 95, 30, 50), (190, 70, 45, 25), (270, 190, 25, 30)]):
        labels[((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 < 1] = 3 + index
    return labels


def _known_warp() -> ThinPlate:
    """A thin-plate pull with displacements of up to ~12 px."""
    rng = np.random.default_rng(4)
    centres = rng.uniform([0, 0], [WIDTH, HEIGHT], (9, 2))
    return ThinPlate.fit(centres, centres + rng.normal(0, 7.0, centres.shape), float(WIDTH))


def _warped(labels: np.ndarray, warp: ThinPlate) -> np.ndarray:
    map_x, map_y = warp.maps((0, 0, WIDTH, HEIGHT))
    return cv2.remap(labels.astype(np.float32), map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE).astype(np.int32)


def _near_outlines(labels: np.ndarray, reach: int) -> np.ndarray:
    """Pixel points (N, 2) within `reach` px of a label boundary, a pixel in from the frame."""
    edges = cv2.morphologyEx(labels.astype(np.float32), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    near = cv2.dilate(edges.astype(np.uint8), np.ones((2 * reach + 1,) * 2, np.uint8)).astype(bool)
    near[:8], near[-8:], near[:, :8], near[:, -8:] = False, False, False, False
    rows, cols = np.nonzero(near)
    return np.stack([cols, rows], axis=1).astype(np.float64)


def test_the_soft_channels_are_signed_and_bounded():
    labels = _layout()
    channels = soft_channels(labels, [0, 3], reach=5.0)
    assert channels.shape == (2, HEIGHT, WIDTH) and np.abs(channels).max() <= 1.0
    assert (channels[1][labels == 3] > 0).all() and (channels[1][labels != 3] <= 0).all()


def test_a_label_that_fills_the_map_or_is_absent_is_saturated_without_overflow():
    import warnings

    labels = np.zeros((20, 30), np.int32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        channels = soft_channels(labels, [0, 1], reach=0.5)
    assert (channels[0] == 1.0).all() and (channels[1] == -1.0).all()


def test_the_bases_and_the_bending_operator():
    basis = bilinear_basis(50, 6)
    np.testing.assert_allclose(basis.sum(axis=1), 1.0)
    np.testing.assert_allclose(basis[[0, -1]], np.eye(6)[[0, -1]])
    bending = bending_operator(4, 5)
    plane = np.add.outer(np.arange(4) * 2.0, np.arange(5) * -3.0).ravel()
    np.testing.assert_allclose(bending @ plane, 0.0, atol=1e-12)  # an affine map does not bend


def test_a_known_thin_plate_warp_is_recovered_near_the_outlines():
    labels, warp = _layout(), _known_warp()
    target = _warped(labels, warp)
    found = register_maps(labels, target)
    assert found is not None
    points = _near_outlines(target, 6)
    error = np.hypot(*(found.pull(points) - warp.pull(points)).T)
    # the maps say where outlines go; within 6 px of one the map is good to a pixel or two
    assert np.median(error) < 1.5 and np.percentile(error, 95) < 4.0, (np.median(error), np.percentile(error, 95))
    everywhere = np.stack(np.meshgrid(np.arange(0, WIDTH, 4.0), np.arange(0, HEIGHT, 4.0)), -1).reshape(-1, 2)
    assert (found.jacobian_determinants(everywhere) > 0).all()


def test_identical_maps_register_to_the_identity():
    labels = _layout()
    found = register_maps(labels, labels)
    assert found is not None
    points = _near_outlines(labels, 20)
    assert np.abs(found.pull(points) - points).max() < 0.05


def test_a_re_layout_takes_one_map_for_its_touching_regions():
    """Every reshaped region pulls its shared edges from the same exemplar points: no tear."""
    labels, warp = _layout(), _known_warp()
    target = _warped(labels, warp)
    painting = np.repeat((labels[..., None] * 0.15).astype(np.float32), 3, axis=2)
    motions = run(painting, Edit(labels, target), "moments").motions
    fields = {region: motion.field for region, motion in motions.items() if motion.field is not None}
    assert len(fields) >= 3
    assert len({id(field) for field in fields.values()}) == 1


def test_a_map_that_stretches_what_a_region_gained_into_streaks_smears():
    from engine.grid_map import GridMap
    from engine.reshape import Trades, smears

    labels = np.zeros((64, 96), np.int32)
    labels[:, 48:] = 1
    target = labels.copy()
    target[:, 48:66] = 0  # region 0 gained a strip
    squeeze = GridMap.sample(lambda p: np.stack([0.2 * p[:, 0], p[:, 1]], axis=1), 64, 96, 8.0)
    mild = GridMap.sample(lambda p: np.stack([0.8 * p[:, 0], p[:, 1]], axis=1), 64, 96, 8.0)
    trades = Trades(labels, target)
    assert smears(squeeze, trades.gained(0))
    assert not smears(mild, trades.gained(0))
    assert not smears(squeeze, trades.gained(1))  # region 1 gained nothing


def test_a_local_edit_is_registered_in_its_box_and_left_alone_outside():
    from engine.register import edit_box

    labels = np.zeros((300, 400), np.int32)
    labels[200:, :] = 1
    ys, xs = np.mgrid[0:300, 0:400].astype(np.float64)
    labels[((xs - 80) / 15) ** 2 + ((ys - 150) / 50) ** 2 < 1] = 2
    target = labels.copy()
    target[labels == 2] = 0
    lean = xs + 0.004 * np.clip(200 - ys, 0, None) ** 2  # the figure leans left, its base fixed
    target[((lean - 80) / 15) ** 2 + ((ys - 150) / 50) ** 2 < 1] = 2
    x0, y0, x1, y1 = edit_box(labels, target)
    assert x1 - x0 < 200 and y1 - y0 < 200
    found = register_maps(labels, target)
    assert found is not None
    far = np.array([[350.0, 50.0], [300.0, 280.0], [390.0, 150.0]])
    assert np.abs(found.pull(far) - far).max() < 0.5
    tip = np.array([[80.0 - 0.004 * 90**2, 110.0]])  # where the figure's tip went
    assert abs(found.pull(tip)[0, 0] - 80.0) < 4.0


def test_trades_say_whom_a_region_traded_pixels_with():
    from engine.reshape import Trades

    labels = np.zeros((4, 6), np.int32)
    labels[:, 3:] = 1
    target = labels.copy()
    target[0, 3] = 0  # region 0 took one pixel from 1
    target[3, 0:2] = 2  # and lost two to a new region 2
    trades = Trades(labels, target)
    assert trades.share(0, {1}) == 1 / 3 and trades.share(0, {2}) == 2 / 3
    assert trades.share(5, {1}) == 1.0  # traded nothing
    np.testing.assert_array_equal(trades.gained(0), [[3.0, 0.0]])
