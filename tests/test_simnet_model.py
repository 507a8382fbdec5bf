"""The SIM-Net networks: shapes, sizes of both presets, and the properties the design relies on."""

import pytest

torch = pytest.importorskip("torch")

from engine.simnet.config import PRESETS, SimNetConfig, preset
from engine.simnet.geometry import mask_moments, sqrt_spd_2x2
from engine.simnet.model import SimNet, count_parameters

from .simnet_helpers import tiny_config

_IDENTITY = torch.eye(2, 3)[None]


def _masks(size, boxes):
    masks = torch.zeros(len(boxes), 1, size, size)
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        masks[i, 0, y0:y1, x0:x1] = 1
    return masks


def test_paper_preset_has_the_reference_sizes():
    model = SimNet(preset("paper"))
    assert count_parameters(model.keypoint_detector) == pytest.approx(14.2e6, rel=0.01)
    assert count_parameters(model.transport) == pytest.approx(37.7e6, rel=0.01)
    assert preset("paper").keypoints == 10 and preset("paper").work_size == 256


def test_small_preset_is_much_smaller():
    small, paper = SimNet(preset("small")), SimNet(preset("paper"))
    inference = lambda m: count_parameters(m.keypoint_detector) + count_parameters(m.transport)
    assert inference(small) * 20 < inference(paper)


def test_config_round_trips_through_a_dict():
    for config in PRESETS.values():
        assert SimNetConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")


def test_forward_shapes_and_weights_sum_to_one():
    config = tiny_config()
    model = SimNet(config).eval()
    s, k = config.work_size, config.keypoints
    masks = _masks(s, [(4, 20, 4, 20), (8, 28, 10, 26)])
    with torch.no_grad():
        out = model(torch.rand(1, 3, s, s), masks[:1], masks[1:], _IDENTITY)
    assert out["keypoints_src"].shape == (1, k, 2) and out["jacobians_tgt"].shape == (1, k, 2, 2)
    assert out["motions"].shape == (1, k + 2, 2, 3) and out["weights"].shape == (1, k + 2, s, s)
    assert torch.allclose(out["weights"].sum(dim=1), torch.ones(1, s, s), atol=1e-5)
    assert out["image"].shape == (1, 3, s, s) and out["mask"].shape == (1, 1, s, s)


def test_keypoints_stay_on_the_region():
    config = tiny_config()
    torch.manual_seed(0)
    model = SimNet(config).eval()
    masks = _masks(config.work_size, [(2, 10, 20, 30)])
    with torch.no_grad():
        keypoints, _ = model.keypoint_detector(masks)
    pixels = (keypoints[0].numpy() + 1) * config.work_size / 2 - 0.5
    assert (pixels[:, 0] > 16).all() and (pixels[:, 1] < 14).all()  # near the box, far from the rest


def test_untrained_jacobians_give_the_moments_alignment():
    """J_src J_tgt^-1 equals C_src^1/2 C_tgt^-1/2 before any training (identity network part)."""
    config = tiny_config()
    model = SimNet(config).eval()
    masks = _masks(config.work_size, [(4, 12, 4, 28), (4, 28, 8, 16)])
    with torch.no_grad():
        _, jacobians = model.keypoint_detector(masks)
        _, covariance = mask_moments(masks, config.work_size)
    expected = sqrt_spd_2x2(covariance[0]) @ torch.linalg.inv(sqrt_spd_2x2(covariance[1]))
    got = jacobians[0, 0] @ torch.linalg.inv(jacobians[1, 0])
    assert torch.allclose(got, expected, atol=1e-5)


def test_identity_edit_gives_back_the_exemplar_region():
    config = tiny_config()
    model = SimNet(config).eval()
    s = config.work_size
    exemplar = torch.rand(1, 3, s, s)
    mask = _masks(s, [(6, 24, 5, 20)])
    with torch.no_grad():
        out = model(exemplar, mask, mask, _IDENTITY)
    assert torch.allclose(out["motions"], out["motions"][:, :1].expand_as(out["motions"]), atol=1e-6)
    inside = mask[0, 0] > 0
    assert torch.allclose(out["image"][0][:, inside], exemplar[0][:, inside], atol=1e-5)


def test_an_affine_edit_is_the_prior_whatever_the_weights():
    """The design's promise: when the prior explains the edit, the aligned mask is the target,
    both get the same keypoints, and every motion is the prior, trained or not."""
    from engine.simnet.data import prior_affine

    config = tiny_config()
    torch.manual_seed(3)
    model = SimNet(config).eval()
    s = config.work_size
    source, target = _masks(s, [(4, 14, 3, 11)]), _masks(s, [(12, 22, 15, 23)])  # moved by (12, 8) px
    prior = torch.from_numpy(prior_affine(source[0, 0].numpy() > 0, target[0, 0].numpy() > 0))[None]
    assert prior[0, :, 2].tolist() == pytest.approx([-24 / s, -16 / s], abs=1e-5)  # pulls back by the move
    exemplar = torch.rand(1, 3, s, s)
    with torch.no_grad():
        out = model(exemplar, source, target, prior)
    assert torch.allclose(out["aligned_mask"], target, atol=1e-5)
    assert torch.allclose(out["motions"][:, 1:], prior[:, None].expand(1, config.keypoints + 1, 2, 3), atol=1e-5)
    inside = target[0, 0] > 0
    # the moved pixels themselves (texture guidance at its start nudges statistics by ~1e-4)
    assert torch.allclose(out["image"][0][:, inside], exemplar[0][:, 4:14, 3:11].reshape(3, -1), atol=2e-3)


def test_texture_guidance_starts_as_the_identity_and_keeps_to_the_range():
    from engine.simnet.texture_guidance import TextureGuidance, guide

    config = tiny_config()
    guidance = TextureGuidance(config)
    s = config.work_size
    exemplar = torch.rand(2, 3, s, s)
    source, target = _masks(s, [(2, 12, 2, 12), (2, 12, 2, 12)]), _masks(s, [(10, 20, 10, 20), (10, 20, 10, 20)])
    with torch.no_grad():
        matrices, offsets = guidance(exemplar, exemplar, source, source)  # nothing moved
    assert torch.count_nonzero(offsets) == 0
    # statistics already equal: the matrix is the identity
    assert torch.allclose(matrices[:, :, :3], torch.eye(3).expand(2, 3, 3), atol=1e-4)
    assert torch.allclose(matrices[:, :, 3], torch.zeros(2, 3), atol=1e-4)
    with torch.no_grad():
        matrices = torch.eye(3, 4).expand(2, 3, 4) * 3.0  # an absurd gain
        guided = guide(exemplar * 0.5, exemplar, source, matrices, torch.zeros(2, 1, s, s))
    region = exemplar[:, :, 2:12, 2:12]
    high = torch.maximum(region.amax(dim=(2, 3))[..., None, None], exemplar * 0.5)
    assert (guided <= high + 1e-6).all()


def test_inference_path_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, engine.models.learned, engine.runtime.sessions, engine.pipeline; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
