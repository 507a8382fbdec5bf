import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import motion

from .conftest import normalised_grid, sampling_fields

finite = st.floats(-3, 3, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=4, max_size=4))
def test_closed_form_inverse_matches_numpy(values):
    matrix = np.array(values).reshape(2, 2)
    if abs(np.linalg.det(matrix)) < 1e-3:
        return
    assert np.allclose(motion.inverse_2x2(matrix), np.linalg.inv(matrix), atol=1e-6, rtol=1e-6)


def test_singular_inverse_stays_finite():
    inverse = motion.inverse_2x2(np.zeros((3, 2, 2)))
    assert np.isfinite(inverse).all()


def _random_keypoints(k=5, seed=0):
    rng = np.random.default_rng(seed)
    kp_s, kp_t = rng.uniform(-0.8, 0.8, (2, k, 2))
    jac_s, jac_t = np.eye(2) + rng.normal(0, 0.2, (2, k, 2, 2))
    return kp_s, jac_s, kp_t, jac_t


def test_local_affines_identity_first_and_keypoints_map_to_keypoints():
    kp_s, jac_s, kp_t, jac_t = _random_keypoints()
    affines = motion.local_affines(kp_s, jac_s, kp_t, jac_t)
    assert affines.shape == (6, 2, 3)
    assert np.allclose(affines[0], [[1, 0, 0], [0, 1, 0]])
    mapped = np.einsum("kij,kj->ki", affines[1:, :, :2], kp_t) + affines[1:, :, 2]
    assert np.allclose(mapped, kp_s)
    # the local linear part is J_src J_tgt^-1
    assert np.allclose(affines[1:, :, :2], jac_s @ np.linalg.inv(jac_t))


def test_equal_keypoints_give_identity_motions():
    kp_s, jac_s, _, _ = _random_keypoints()
    affines = motion.local_affines(kp_s, jac_s, kp_s, jac_s)
    assert np.allclose(affines, np.tile([[1, 0, 0], [0, 1, 0]], (6, 1, 1)))


def test_normalised_grid_is_align_corners_false():
    grid = normalised_grid(2, 4)
    assert np.allclose(grid[0, :, 0], [-0.75, -0.25, 0.25, 0.75])
    assert np.allclose(grid[:, 0, 1], [-0.5, 0.5])


def test_pixel_and_normalised_affines_agree_at_any_resolution():
    affines = motion.local_affines(*_random_keypoints(3, seed=2))
    for height, width in ((7, 11), (256, 256), (1080, 1920)):
        fields = sampling_fields(affines, height, width)  # (M, H, W, 2) normalised
        pixel = motion.normalised_to_pixel_affines(affines, height, width)
        ys, xs = np.mgrid[0:height, 0:width]
        points = np.stack([xs, ys], -1).astype(np.float64)
        pulled = np.einsum("mij,hwj->mhwi", pixel[:, :, :2], points) + pixel[:, None, None, :, 2]
        as_normalised = np.stack([(2 * pulled[..., 0] + 1) / width - 1, (2 * pulled[..., 1] + 1) / height - 1], -1)
        assert np.allclose(as_normalised, fields, atol=1e-5)
        back = motion.pixel_to_normalised_affines(pixel, height, width)
        assert np.allclose(back, affines)


def test_identity_fields_are_the_grid():
    fields = sampling_fields(np.array([[[1.0, 0, 0], [0, 1.0, 0]]]), 5, 3)
    assert np.allclose(fields[0], normalised_grid(5, 3))


def test_point_conversions_invert_each_other():
    points = np.array([[0.0, 0.0], [10.5, 3.0], [-0.5, 19.5]])
    normalised = motion.points_to_normalised(points, 20, 40)
    assert np.allclose(normalised[2], [(2 * -0.5 + 1) / 40 - 1, 1.0])
    assert np.allclose(motion.points_to_pixels(normalised, 20, 40), points)
