"""The numpy side of the learned model (engine.models.learned): how the graphs' weights become
full-resolution motions. No ONNX Runtime needed."""

import numpy as np

from engine.blend import upsample_weights
from engine.masks import region_grid
from engine.models.learned import KEEP_WEIGHT, on_region_grid, sparse


def test_region_grid_resampling_agrees_with_the_engines_upsampling():
    """A working-size map resampled onto a region's grid holds, at each cell, the value the
    transport would upsample at that cell's centre pixel."""
    rng = np.random.default_rng(0)
    height, width, s = 300, 400, 32
    maps = rng.random((2, s, s)).astype(np.float32)
    target = np.zeros((height, width), bool)
    target[40:250, 90:330] = True
    grid_box, centres, shape, cell = region_grid(target)
    got = on_region_grid(maps, grid_box, shape, height, width)
    assert got.shape == (2,) + shape and cell == 1.0  # a small region: one cell per pixel
    for m in range(2):
        expected = upsample_weights(maps[m], (0.0, 0.0, float(width), float(height)), (90, 40, 330, 250))
        assert np.abs(got[m] - expected).max() < 1e-4


def test_region_grid_of_a_large_region_is_coarser_than_a_pixel():
    target = np.zeros((2000, 1000), bool)
    target[100:1900, 50:950] = True
    _, centres, shape, cell = region_grid(target)
    assert max(shape) <= 256 and cell > 1 and len(centres) == shape[0] * shape[1]


def test_sparse_drops_small_shares_and_renormalises():
    weights = np.array([[[0.9]], [[0.07]], [[0.03]]], np.float32)  # (M=3, 1, 1)
    got = sparse(weights)
    assert got[2, 0, 0] == 0 and KEEP_WEIGHT > 0.03
    assert np.isclose(got.sum(), 1.0) and np.isclose(got[0, 0, 0] / got[1, 0, 0], 0.9 / 0.07)


def test_sparse_keeps_a_cell_whose_every_share_is_small():
    weights = np.full((25, 2, 2), 1 / 25, np.float32)  # 4% each: all under the threshold
    assert np.allclose(sparse(weights), weights)
