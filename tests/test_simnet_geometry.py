"""engine.simnet.geometry against numpy and engine.motion (the inference side)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine import motion
from engine.simnet import geometry

from .conftest import sampling_fields


def test_inverse_2x2_matches_numpy_and_survives_singular():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(5, 2, 2))
    assert np.allclose(geometry.inverse_2x2(torch.tensor(m)).numpy(), np.linalg.inv(m), atol=1e-9)
    singular = geometry.inverse_2x2(torch.zeros(1, 2, 2, dtype=torch.float64))
    assert torch.isfinite(singular).all()


def test_sqrt_spd_squares_back():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 2, 2))
    spd = torch.tensor(a @ a.transpose(0, 2, 1) + 0.1 * np.eye(2))
    root = geometry.sqrt_spd_2x2(spd)
    assert torch.allclose(root @ root, spd, atol=1e-9)
    assert torch.allclose(root, root.transpose(1, 2))


def test_mask_moments_of_a_rectangle():
    masks = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    masks[0, 0, 8:24, 4:12] = 1  # 8 wide, 16 tall
    centroid, covariance = geometry.mask_moments(masks, 32)
    # centre pixel (7.5, 15.5) in normalised units
    assert np.allclose(centroid.numpy()[0], motion.points_to_normalised(np.array([7.5, 15.5]), 32, 32))
    # variance of a uniform 8-px span: 8^2/12 px^2 -> normalised by (2/32)^2
    assert covariance[0, 0, 0].item() == pytest.approx(8**2 / 12 * (2 / 32) ** 2, rel=1e-6)
    assert covariance[0, 1, 1].item() == pytest.approx(16**2 / 12 * (2 / 32) ** 2, rel=1e-6)
    assert abs(covariance[0, 0, 1].item()) < 1e-12


def test_local_affines_and_fields_match_the_engine():
    rng = np.random.default_rng(2)
    kp_s, kp_t = rng.uniform(-1, 1, (2, 3, 2)), rng.uniform(-1, 1, (2, 3, 2))
    j_s, j_t = np.eye(2) + 0.2 * rng.normal(size=(2, 3, 2, 2)), np.eye(2) + 0.2 * rng.normal(size=(2, 3, 2, 2))
    ours = geometry.local_affines(*(torch.tensor(a) for a in (kp_s, j_s, kp_t, j_t))).numpy()
    for b in range(2):
        assert np.allclose(ours[b], motion.local_affines(kp_s[b], j_s[b], kp_t[b], j_t[b]), atol=1e-9)
    fields = geometry.sampling_fields(torch.tensor(ours), 8, 12).numpy()
    assert np.allclose(fields[1], sampling_fields(ours[1], 8, 12), atol=1e-5)


def test_composed_and_inverted_affines_match_the_engine():
    rng = np.random.default_rng(3)
    outer = np.eye(2, 3) + 0.3 * rng.normal(size=(2, 3))
    inner = np.eye(2, 3) + 0.3 * rng.normal(size=(4, 2, 3))
    ours = geometry.compose_affines(torch.tensor(outer)[None], torch.tensor(inner)[None])[0].numpy()
    assert np.allclose(ours, motion.compose_affines(outer, inner), atol=1e-12)
    point = np.array([0.3, -0.2])
    assert np.allclose(ours[1, :, :2] @ point + ours[1, :, 2], outer[:, :2] @ (inner[1, :, :2] @ point + inner[1, :, 2]) + outer[:, 2])
    back = geometry.compose_affines(geometry.invert_affines(torch.tensor(outer)[None]), torch.tensor(ours)[None])[0].numpy()
    assert np.allclose(back, inner, atol=1e-9)


def test_refined_motions_match_the_engine_and_start_with_identity_and_prior():
    from engine.simnet.model import refined_motions

    rng = np.random.default_rng(4)
    prior = np.eye(2, 3) + 0.2 * rng.normal(size=(2, 3))
    kp_a, kp_t = rng.uniform(-1, 1, (2, 3, 2))
    j_a, j_t = np.eye(2) + 0.2 * rng.normal(size=(2, 3, 2, 2))
    ours = refined_motions(*(torch.tensor(a)[None] for a in (prior, kp_a, j_a, kp_t, j_t)))[0].numpy()
    engine = motion.refined_motions(prior, kp_a, j_a, kp_t, j_t)
    assert ours.shape == engine.shape == (5, 2, 3) and np.allclose(ours, engine, atol=1e-9)
    assert np.allclose(engine[0], np.eye(2, 3)) and np.allclose(engine[1], prior)
    # equal keypoints on both masks: nothing to refine, every motion is the prior
    assert np.allclose(motion.refined_motions(prior, kp_t, j_t, kp_t, j_t)[1:], prior, atol=1e-9)


def test_identity_field_warps_to_the_same_image():
    image = torch.rand(1, 3, 16, 16)
    identity = torch.tensor([[[[1.0, 0, 0], [0, 1.0, 0]]]])
    warped = geometry.warp(image, geometry.sampling_fields(identity, 16, 16))
    assert torch.allclose(warped[:, 0], image, atol=1e-6)


def test_antialiased_resize_keeps_constants_and_blurs_edges():
    resize = geometry.AntialiasedResize(1, 16, 64)
    assert torch.allclose(resize(torch.full((2, 1, 64, 64), 0.7)), torch.full((2, 1, 16, 16), 0.7), atol=1e-6)
    half = torch.zeros(1, 1, 64, 64)
    half[..., 32:] = 1
    row = resize(half)[0, 0, 8]
    assert 0 < row[7].item() < row[8].item() < 1  # a soft step, not a hard one


def test_band_is_the_edge_only():
    mask = torch.zeros(1, 1, 20, 20)
    mask[..., 5:15, 5:15] = 1
    ring = geometry.band(mask, 1)
    assert ring[0, 0, 10, 10] == 0 and ring[0, 0, 0, 0] == 0
    assert ring[0, 0, 5, 10] == 1 and ring[0, 0, 4, 10] == 1
