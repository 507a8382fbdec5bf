import cv2
import numpy as np
import pytest

from engine import blend, masks, motion
from engine.motion import RegionMotion

from .conftest import textured

IDENTITY = np.array([[1.0, 0, 0], [0, 1.0, 0]])


def _motion(pixel_affines, height, width, weights=None):
    pixel_affines = np.asarray(pixel_affines, float).reshape(-1, 2, 3)
    if weights is None:
        weights = np.zeros((len(pixel_affines), 4, 4), np.float32)
        weights[-1] = 1.0
    return RegionMotion(
        affines=motion.pixel_to_normalised_affines(pixel_affines, height, width),
        weights=weights,
        box=(0, 0, width, height),
        keypoints_src=np.zeros((0, 2)),
        keypoints_tgt=np.zeros((0, 2)),
    )


def test_bounding_box():
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    assert masks.bounding_box(mask) == (3, 2, 9, 5)
    assert masks.bounding_box(mask, margin=4) == (0, 0, 12, 9)
    assert masks.bounding_box(np.zeros((3, 3), bool)) is None


def test_identity_everywhere_reproduces_the_exemplar():
    exemplar = textured(37, 53, 4)
    labels = np.zeros((37, 53), np.int32)
    labels[10:20, 5:40] = 1
    motions = {r: _motion([IDENTITY], 37, 53) for r in (0, 1)}
    result = blend.composite(exemplar, labels, labels, motions).pixels
    assert np.abs(result - exemplar).max() < 1e-5


def test_integer_translation_moves_pixels_exactly():
    height, width = 60, 80
    exemplar = textured(height, width)
    source = np.zeros((height, width), np.int32)
    source[10:30, 10:30] = 1
    target = np.zeros_like(source)
    target[25:45, 40:60] = 1
    shift = np.array([[1.0, 0, -30], [0, 1.0, -15]])  # target (x, y) pulls from (x - 30, y - 15)
    motions = {0: _motion([IDENTITY], height, width), 1: _motion([shift], height, width)}
    result = blend.composite(exemplar, source, target, motions).pixels
    # away from the feathered edge the moved square is the exemplar's square, pixel for pixel
    assert np.abs(result[28:42, 43:57] - exemplar[13:27, 13:27]).max() < 1e-5


def test_samples_outside_the_image_reflect_instead_of_black():
    exemplar = textured(40, 40) * 0.5 + 0.25  # never near 0
    labels = np.zeros((40, 40), np.int32)
    far = np.array([[1.0, 0, 25], [0, 1.0, 0]])  # pulls columns 25..64: half outside
    result = blend.composite(exemplar, labels, labels, {0: _motion([far], 40, 40)}).pixels
    assert result.min() > 0.2


def test_motion_landing_outside_its_region_loses_to_one_inside():
    height, width = 40, 60
    exemplar = np.zeros((height, width, 3), np.float32)
    exemplar[:, 30:] = 1.0  # region 1 (white) is the right half
    labels = np.zeros((height, width), np.int32)
    labels[:, 30:] = 1
    target = np.zeros_like(labels)
    target[:, 20:] = 1  # region 1 grows to the left by 10 columns
    weights = np.full((2, 4, 4), 0.5, np.float32)  # an undecided model: half identity, half shift
    grown = _motion([IDENTITY, [[1.0, 0, 12], [0, 1.0, 0]]], height, width, weights)
    result = blend.composite(exemplar, labels, target, {0: _motion([IDENTITY], height, width), 1: grown}).pixels
    # where identity would pull black from region 0, the shifted (white) sample wins
    assert result[:, 22:28].min() > 0.99


def test_feathered_masks_partition_unity():
    labels = np.random.default_rng(0).integers(0, 4, (30, 40))
    labels = cv2.resize(labels.astype(np.uint8), (80, 60), interpolation=cv2.INTER_NEAREST)
    total = np.zeros((60, 80), np.float32)
    for region in range(4):
        mask = labels == region
        box = masks.bounding_box(mask, margin=5)
        alpha = masks.feathered_mask(mask, box, 0.7)
        total[box[1] : box[3], box[0] : box[2]] += alpha
    assert np.allclose(total, 1.0, atol=1e-5)


def test_no_halo_between_two_flat_regions():
    exemplar = np.zeros((20, 20, 3), np.float32)
    exemplar[:, 10:] = 1.0
    labels = np.zeros((20, 20), np.int32)
    labels[:, 10:] = 1
    motions = {r: _motion([IDENTITY], 20, 20) for r in (0, 1)}
    result = blend.composite(exemplar, labels, labels, motions).pixels
    assert result.min() >= 0.0 and result.max() <= 1.0 + 1e-6
    assert np.abs(result[:, :8]).max() < 1e-6 and np.abs(result[:, 12:] - 1).max() < 1e-6


@pytest.mark.parametrize("grid_box", [(0, 0, 100, 50), (20, 10, 60, 30)])
def test_upsampled_weights_align_with_pixel_centres(grid_box):
    gx0, gy0, gx1, gy1 = grid_box
    h, w = 5, 8
    # a grid whose value is the full-resolution x of each cell centre is linear in x
    xs = gx0 + (np.arange(w) + 0.5) * (gx1 - gx0) / w - 0.5
    grid = np.tile(xs, (h, 1)).astype(np.float32)
    box = (30, 15, 50, 25)
    up = blend.upsample_weights(grid, grid_box, box)
    inner = up[:, :]  # inside the grid's cell centres the interpolation is exact
    expected = np.arange(box[0], box[2], dtype=np.float32)
    valid = (expected >= xs[0]) & (expected <= xs[-1])
    assert np.allclose(inner[:, valid], expected[valid], atol=2e-2)


def test_alpha_travels_with_the_pixels():
    exemplar = textured(30, 30, 4)
    exemplar[..., 3] = np.linspace(0, 1, 30)[None, :]
    labels = np.zeros((30, 30), np.int32)
    shift = np.array([[1.0, 0, 3], [0, 1.0, 0]])
    result = blend.composite(exemplar, labels, labels, {0: _motion([shift], 30, 30)}).pixels
    assert np.allclose(result[:, :20, 3], exemplar[:, 3:23, 3], atol=1e-5)


def test_explicit_alphas_blend_regions_by_their_coverage():
    exemplar = textured(30, 40)
    labels = np.zeros((30, 40), np.int32)
    labels[:, 20:] = 1
    shift = np.array([[1.0, 0, 5], [0, 1.0, 0]])
    motions = {0: _motion([IDENTITY], 30, 40), 1: _motion([shift], 30, 40)}
    coverage = np.tile(np.linspace(0, 1, 40, dtype=np.float32), (30, 1))
    result = blend.composite(exemplar, labels, labels, motions, alphas={1: coverage, 0: 1 - coverage}).pixels
    moved = blend.composite(exemplar, labels, labels, motions, alphas={1: np.ones_like(coverage), 0: np.zeros_like(coverage)}).pixels
    still = blend.composite(exemplar, labels, labels, motions, alphas={1: np.zeros_like(coverage), 0: np.ones_like(coverage)}).pixels
    assert np.allclose(result, coverage[..., None] * moved + (1 - coverage[..., None]) * still, atol=1e-5)
    assert np.abs(still - exemplar).max() < 1e-5


def test_weight_support_covers_every_non_zero_upsampled_weight():
    rng = np.random.default_rng(4)
    for _ in range(20):
        grid = np.zeros((12, 16), np.float32)
        r, c = rng.integers(0, 12), rng.integers(0, 16)
        grid[r : r + rng.integers(1, 4), c : c + rng.integers(1, 4)] = 1.0
        grid_box = (10.0, 5.0, 10.0 + 16 * 7.3, 5.0 + 12 * 6.1)
        box = (0, 0, 140, 90)
        full = blend.upsample_weights(grid, grid_box, box)
        part = blend.weight_support(grid, grid_box, box)
        outside = np.ones_like(full, bool)
        outside[part[1] : part[3], part[0] : part[2]] = False
        assert full[outside].max(initial=0.0) == 0.0
    interior = np.zeros((12, 16), np.float32)
    interior[5:7, 6:9] = 1.0  # away from the grid's edges the part is much smaller than the box
    part = blend.weight_support(interior, (0.0, 0.0, 160.0, 120.0), (0, 0, 160, 120))
    assert (part[2] - part[0]) * (part[3] - part[1]) < 0.15 * 160 * 120  # 50x40 of 160x120
    assert blend.weight_support(np.zeros((4, 4), np.float32), (0, 0, 8, 8), (0, 0, 8, 8)) is None


def test_band_supports_cover_every_non_zero_weight_and_follow_a_diagonal():
    grid = np.zeros((32, 32), np.float32)
    for i in range(32):
        grid[i, max(0, i - 1) : i + 2] = 1.0  # a diagonal band
    grid_box, box = (0.0, 0.0, 512.0, 512.0), (0, 0, 512, 512)
    full = blend.upsample_weights(grid, grid_box, box)
    parts = [blend.band_support(grid, grid_box, (0, top, 512, top + 64)) for top in range(0, 512, 64)]
    covered = np.zeros_like(full, bool)
    for x0, y0, x1, y1 in parts:
        covered[y0:y1, x0:x1] = True
    assert full[~covered].max(initial=0.0) == 0.0
    area = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in parts)
    assert area < 0.3 * 512 * 512  # the band's bounding box is the whole image
    assert blend.band_support(np.zeros((4, 4), np.float32), (0, 0, 8, 8), (0, 0, 8, 8)) is None
    assert blend.band_support(grid, grid_box, (0, 600, 512, 640)) is None  # below the grid


def test_merged_motions_fold_equal_affines_and_keep_the_blend():
    shift = np.array([[1.0, 0, 3.0], [0, 1.0, -2.0]])
    affines = np.stack([IDENTITY, shift, IDENTITY + 1e-12, shift + [[0, 0, 0.5], [0, 0, 0]]])
    weights = np.random.default_rng(0).random((4, 4, 4)).astype(np.float32)
    weights /= weights.sum(axis=0)
    kept, summed, indices = blend.merged_motions(affines, weights)
    assert indices == [0, 1, 3] and len(kept) == 3
    assert np.allclose(summed[0], weights[0] + weights[2]) and np.array_equal(summed[2], weights[3])
    assert np.allclose(summed.sum(axis=0), 1.0)
    # the composite is the same with the duplicate as with the merged motion
    height, width = 24, 32
    exemplar = textured(height, width)
    labels = np.zeros((height, width), np.int32)
    pixel = np.stack([IDENTITY, shift, IDENTITY])
    split = _motion(pixel, height, width, np.stack([weights[0], weights[1], weights[2] + weights[3]]))
    merged = _motion(pixel[:2], height, width, np.stack([weights[0] + weights[2] + weights[3], weights[1]]))
    a = blend.composite(exemplar, labels, labels, {0: split}).pixels
    b = blend.composite(exemplar, labels, labels, {0: merged}).pixels
    assert np.abs(a - b).max() < 1e-5
    one = blend.merged_motions(IDENTITY[None], weights[:1])
    assert one[2] == [0] and one[1].shape == (1, 4, 4)


def test_interior_mask_drops_the_rim_but_keeps_thin_regions():
    mask = np.zeros((20, 20), bool)
    mask[4:16, 4:16] = True
    inner = masks.interior_mask(mask, rim=2)
    assert inner.dtype == bool and inner[6:14, 6:14].all() and not inner[4:6].any() and not (inner & ~mask).any()
    thin = np.zeros((20, 20), bool)
    thin[10, 2:18] = True  # nothing survives erosion: the whole line is the interior
    assert np.array_equal(masks.interior_mask(thin, rim=2), thin)
    assert masks.region_interior(mask).dtype == np.float32


def moved_region_scene(height, width):
    """A region (1) moved and slightly rotated over a background (0) that stays, its motion a
    random per-pixel blend of staying and moving: exemplar, exemplar labels, target labels,
    motions."""
    exemplar = textured(height, width, 4)
    labels = np.zeros((height, width), np.int32)
    labels[height // 7 : height * 6 // 7, width // 4 : width * 3 // 4] = 1
    target = np.roll(labels, (height // 14, -width // 9), axis=(0, 1))
    weights = np.random.default_rng(1).random((2, 8, 8)).astype(np.float32)
    weights /= weights.sum(axis=0)
    moved = _motion([IDENTITY, [[0.98, 0.02, 9.0], [-0.03, 1.0, -19.0]]], height, width, weights)
    return exemplar, labels, target, {0: _motion([IDENTITY], height, width), 1: moved}


def test_bands_give_the_same_result_as_one_band(monkeypatch):
    height = 300
    exemplar, labels, target, motions = moved_region_scene(height, 90)
    progress = []
    banded = blend.composite(exemplar, labels, target, motions, on_progress=progress.append).pixels
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(progress) > 2
    monkeypatch.setattr(blend, "BAND_ROWS", height)
    whole = blend.composite(exemplar, labels, target, motions).pixels
    assert np.abs(banded - whole).max() < 1e-5


def test_a_cancel_from_progress_stops_the_composite():
    height, width = 600, 40
    exemplar = textured(height, width)
    labels = np.zeros((height, width), np.int32)
    calls = []

    def cancel(fraction):
        calls.append(fraction)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        blend.composite(exemplar, labels, labels, {0: _motion([IDENTITY], height, width)}, on_progress=cancel)
    assert len(calls) == 1


def test_texture_guidance_on_a_one_row_band_keeps_its_shape_and_bounds():
    guided = RegionMotion(
        affines=np.array([IDENTITY]), weights=np.ones((1, 4, 4), np.float32), box=(0, 0, 9, 9),
        keypoints_src=np.zeros((0, 2)), keypoints_tgt=np.zeros((0, 2)),
        colour_matrix=(np.eye(3, 4) * 1.5).astype(np.float32),
    )
    colour = np.random.default_rng(0).uniform(0, 0.6, (1, 9, 3)).astype(np.float32)
    before = colour.copy()
    low, high = np.zeros(3, np.float32), np.full(3, 0.5, np.float32)
    blend.guide_texture(colour, guided, (0, 0, 9, 1), (low, high))
    assert colour.shape == (1, 9, 3)
    assert (colour <= np.maximum(before, high) + 1e-6).all()
