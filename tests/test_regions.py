import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import regions
from engine.errors import InputError


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 30), st.integers(1, 30), st.integers(1, 90), st.integers(1, 90), st.integers(0, 2**31 - 1)
)
def test_resize_labels_never_invents_ids(h, w, height, width, seed):
    labels = np.random.default_rng(seed).integers(0, 5, (h, w)).astype(np.int32)
    resized = regions.resize_labels(labels, height, width)
    assert resized.shape == (height, width)
    assert set(np.unique(resized)) <= set(np.unique(labels))


def test_resize_labels_integer_upscale_repeats_pixels():
    labels = np.array([[1, 2], [3, 4]], np.int32)
    assert np.array_equal(regions.resize_labels(labels, 4, 4), np.kron(labels, np.ones((2, 2), np.int32)))


def _painted_map():
    """Two anti-aliased discs on a background, as a paint program would draw them."""
    picture = np.full((120, 160, 3), 255, np.uint8)
    cv2.circle(picture, (50, 60), 30, (255, 51, 31), -1, lineType=cv2.LINE_AA)
    cv2.circle(picture, (115, 60), 25, (0, 0, 255), -1, lineType=cv2.LINE_AA)
    return picture


def test_dominant_colours_ignore_antialiasing():
    picture = _painted_map()
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 3  # the edges add colours
    palette = regions.dominant_colours(picture)
    assert sorted(map(tuple, palette.tolist())) == sorted([(255, 255, 255), (255, 51, 31), (0, 0, 255)])
    labels = regions.labels_from_colours(picture, palette)
    red = int(np.flatnonzero((palette == [255, 51, 31]).all(1))[0])
    disc = np.pi * 30.5**2  # cv2 fills pixels whose centres lie within r + 0.5
    assert abs((labels == red).sum() - disc) < 0.02 * disc


def test_near_duplicate_colours_are_one_region():
    picture = np.zeros((20, 20, 3), np.uint8)
    picture[:, :10] = (255, 51, 31)
    picture[:, 10:] = (250, 50, 33)  # the same red, saved slightly differently
    assert len(regions.dominant_colours(picture)) == 1


def test_tiny_map_falls_back_to_all_colours():
    picture = np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8)
    assert len(regions.dominant_colours(picture)) == 2


def test_colour_pair_shares_ids_and_rejects_new_colours():
    exemplar = _painted_map()
    target = np.full_like(exemplar, 255)
    cv2.circle(target, (90, 50), 30, (255, 51, 31), -1, lineType=cv2.LINE_AA)
    exemplar_labels, target_labels, palette = regions.maps_from_colour_pair(exemplar, target)
    red = int(np.flatnonzero((palette == [255, 51, 31]).all(1))[0])
    assert exemplar_labels[60, 50] == red and target_labels[50, 90] == red
    cv2.rectangle(target, (0, 0), (20, 20), (0, 200, 0), -1)
    with pytest.raises(InputError, match="#00c800"):
        regions.maps_from_colour_pair(exemplar, target)


def test_edit_maps_and_their_errors():
    source = np.zeros((8, 8)); source[1:3, 1:3] = 1
    target = np.zeros((8, 8)); target[4:7, 4:7] = 0.8
    exemplar_labels, target_labels = regions.maps_from_edit(source, target)
    assert exemplar_labels.sum() == 4 and target_labels.sum() == 9
    with pytest.raises(InputError, match="target mask is empty"):
        regions.maps_from_edit(source, np.zeros((8, 8)))
    with pytest.raises(InputError, match="source mask covers the whole image"):
        regions.maps_from_edit(np.ones((8, 8)), target)
    with pytest.raises(InputError, match="target mask covers the whole image"):
        regions.maps_from_edit(source, np.ones((8, 8)))
    with pytest.raises(InputError, match="8x8 but the target mask is 9x8"):
        regions.maps_from_edit(source, np.zeros((8, 9)))


def test_paired_ids():
    exemplar = np.array([[0, 1], [2, 2]])
    assert regions.paired_ids(exemplar, np.array([[2, 2], [0, 0]])).tolist() == [0, 2]
    with pytest.raises(InputError, match=r"target region\(s\) 7 \(1 px\)"):
        regions.paired_ids(exemplar, np.array([[0, 7], [2, 2]]))
    with pytest.raises(InputError, match="no region of the target map exists"):
        regions.paired_ids(exemplar, np.full((2, 2), 9))
    with pytest.raises(InputError, match="2x2 but the target map is 3x2"):
        regions.paired_ids(exemplar, np.zeros((2, 3), int))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.int64])
def test_id_counts_match_unique(dtype):
    labels = np.random.default_rng(0).integers(0, 9, (13, 17)).astype(dtype)
    labels[labels == 4] = 7  # a gap in the ids
    ids, counts = regions.id_counts(labels)
    expected_ids, expected_counts = np.unique(labels, return_counts=True)
    assert ids.tolist() == expected_ids.tolist() and counts.tolist() == expected_counts.tolist()
    negative = np.array([[-3, 2], [2, 1 << 22]])  # outside bincount's range: counted by sorting
    assert [a.tolist() for a in regions.id_counts(negative)] == [[-3, 2, 1 << 22], [1, 2, 1]]


@pytest.mark.parametrize("count", [1, 32, 128])
def test_distinct_palette_colours_stay_apart(count):
    palette = regions.distinct_palette(count)
    assert len(np.unique(palette, axis=0)) == count
    gaps = np.linalg.norm(palette[:, None].astype(float) - palette[None].astype(float), axis=2)
    assert gaps[~np.eye(count, dtype=bool)].min(initial=1e9) >= 2 * regions.COLOUR_TOLERANCE


def test_distinct_palette_round_trips_through_quantisation():
    palette = regions.distinct_palette(32)
    labels = np.repeat(np.repeat(np.arange(32).reshape(4, 8), 4, 0), 4, 1)
    picture = regions.colour_map(labels, palette)
    assert np.array_equal(regions.labels_from_colours(picture, palette), labels)
