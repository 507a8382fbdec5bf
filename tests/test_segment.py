import numpy as np
import pytest

from engine.errors import InputError
from engine.segment import merge_small_regions, segment


def _blocks(height=120, width=180, seed=0):
    """Three flat areas with paint-like noise: left, right-top, right-bottom."""
    rng = np.random.default_rng(seed)
    pixels = np.empty((height, width, 3), np.float32)
    pixels[:, : width // 2] = (0.8, 0.2, 0.2)
    pixels[: height // 2, width // 2 :] = (0.2, 0.7, 0.3)
    pixels[height // 2 :, width // 2 :] = (0.1, 0.2, 0.9)
    return np.clip(pixels + rng.normal(0, 0.02, pixels.shape), 0, 1).astype(np.float32)


def test_flat_areas_become_regions_ordered_by_area():
    labels = segment(_blocks())
    assert labels.shape == (120, 180) and labels.dtype == np.int32
    assert labels.max() == 2
    assert labels[60, 10] == 0  # the largest area (the left half) is region 0
    assert labels[10, 170] != labels[110, 170]
    areas = np.bincount(labels.ravel())
    assert list(areas) == sorted(areas, reverse=True)


def test_max_regions_merges_down():
    labels = segment(_blocks(), max_regions=2)
    assert labels.max() == 1
    with pytest.raises(InputError):
        segment(_blocks(), max_regions=0)


def test_small_regions_merge_into_longest_border():
    labels = np.zeros((10, 10), int)
    labels[:, 5:] = 1
    labels[4:6, 4:6] = 2  # 4 px straddling the border, 2 px of it on each side
    labels[0, 9] = 3  # 1 px inside region 1
    merged = merge_small_regions(labels, min_pixels=5)
    assert merged.max() == 1
    assert merged[0, 9] == merged[0, 8]


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 1), (33, 17)])
def test_tiny_and_odd_sizes(shape):
    labels = segment(np.random.default_rng(1).random(shape + (3,)).astype(np.float32))
    assert labels.shape == shape and labels.min() == 0


def test_greyscale_and_large_images_use_a_small_copy():
    pixels = _blocks(600, 1400)[:, :, :1]
    labels = segment(pixels)
    assert labels.shape == (600, 1400) and 2 <= labels.max() + 1 <= 4


def test_paintings_give_a_handful_of_regions(shared_art):
    from engine.io.imageio import read_image

    for name in ("monet_cliffs_etretat.jpg", "hokusai_great_wave.jpg"):
        labels = segment(read_image(shared_art / name).pixels)
        assert 2 <= labels.max() + 1 <= 60
        assert np.bincount(labels.ravel()).min() >= 0.015 * labels.size * 0.99


def _cut_out(height=120, width=180, seed=0):
    """_blocks with alpha: its right third transparent over junk colours (as in a cut-out
    portrait's file), so what is opaque is the red half and the left parts of green and blue."""
    rng = np.random.default_rng(seed)
    pixels = np.concatenate([_blocks(height, width, seed), np.ones((height, width, 1), np.float32)], axis=2)
    transparent = np.zeros((height, width), bool)
    transparent[:, 2 * width // 3 :] = True
    pixels[transparent, :3] = rng.random((transparent.sum(), 3))
    pixels[transparent, 3] = 0.0
    return pixels, transparent


def test_transparent_pixels_are_one_region_and_only_the_opaque_part_is_segmented():
    pixels, transparent = _cut_out()
    labels = segment(pixels)
    assert labels.max() == 3  # red, green, blue and the transparent region: no junk regions
    apart = labels[0, -1]
    assert np.array_equal(labels == apart, transparent)  # exactly, at full resolution
    opaque = labels[~transparent]
    assert len(np.unique(opaque)) == 3
    assert labels[60, 10] != labels[10, 100] != labels[110, 100]
    areas = np.bincount(labels.ravel())
    assert list(areas) == sorted(areas, reverse=True)


def test_transparent_region_takes_in_no_small_neighbour():
    pixels, transparent = _cut_out()
    labels = segment(pixels, max_regions=2)  # the transparent region and the whole opaque part
    assert labels.max() == 1
    assert np.array_equal(labels == labels[0, -1], transparent)


def test_alpha_that_is_all_opaque_or_all_transparent():
    rgb = _blocks()
    opaque = np.concatenate([rgb, np.ones(rgb.shape[:2] + (1,), np.float32)], axis=2)
    assert np.array_equal(segment(opaque), segment(rgb))
    opaque[:, :, 3] = 0.0
    assert not segment(opaque).any()
    grey_alpha = opaque[:, :, [0, 3]].copy()
    grey_alpha[:, :5, 1] = 1.0  # a sliver of opaque grey
    labels = segment(grey_alpha)
    assert labels.max() == 1 and len(np.unique(labels[:, :5])) == 1 and (labels[:, 5:] != labels[0, 0]).all()
