import os

import cv2
import numpy as np
import pytest

from engine.errors import InputError
from engine.io import imageio

from .conftest import textured


@pytest.mark.parametrize(
    "suffix,depth,channels,tolerance",
    [
        (".png", 8, 3, 0.5 / 255),
        (".png", 8, 4, 0.5 / 255),
        (".png", 16, 4, 0.5 / 65535),
        (".png", 8, 1, 0.5 / 255),
        (".png", 16, 1, 0.5 / 65535),
        (".tif", 16, 3, 0.5 / 65535),
        (".tif", 32, 4, 0.0),
        (".tiff", 32, 1, 0.0),
        (".webp", 8, 4, 0.05),  # lossy by default
        (".jpg", 8, 3, 0.08),
    ],
)
def test_round_trip_keeps_depth_channels_and_values(tmp_path, suffix, depth, channels, tolerance):
    pixels = textured(13, 17, channels)
    path = tmp_path / f"image{suffix}"
    imageio.write_image(path, pixels, depth)
    picture = imageio.read_image(path)
    expected_channels = 3 if suffix == ".jpg" and channels == 1 else channels
    assert picture.pixels.shape == (13, 17, expected_channels)
    assert picture.pixels.dtype == np.float32
    assert picture.bit_depth == depth
    reference = np.repeat(pixels, expected_channels, axis=2) if expected_channels != channels else pixels
    assert np.abs(picture.pixels - reference).max() <= tolerance + 1e-7


def test_float_values_outside_unit_range_are_kept(tmp_path):
    pixels = textured(5, 6) * 4.0 - 1.0
    imageio.write_image(tmp_path / "hdr.tif", pixels, 32)
    assert np.array_equal(imageio.read_image(tmp_path / "hdr.tif").pixels, pixels)


def test_alpha_is_straight_not_premultiplied(tmp_path):
    pixels = np.zeros((4, 4, 4), np.float32)
    pixels[..., 0] = 1.0  # pure red everywhere
    pixels[..., 3] = 0.25  # mostly transparent
    imageio.write_image(tmp_path / "a.png", pixels, 16)
    back = imageio.read_image(tmp_path / "a.png").pixels
    assert np.allclose(back[..., 0], 1.0) and np.allclose(back[..., 3], 0.25, atol=1e-4)


def test_channel_order_is_rgb(tmp_path):
    pixels = np.zeros((2, 2, 3), np.float32)
    pixels[..., 0] = 1.0
    imageio.write_image(tmp_path / "red.png", pixels)
    decoded = cv2.imread(str(tmp_path / "red.png"))  # OpenCV's own order is BGR
    assert decoded[0, 0].tolist() == [0, 0, 255]
    assert imageio.read_image(tmp_path / "red.png").pixels[0, 0].tolist() == [1.0, 0.0, 0.0]


def test_missing_and_corrupt_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        imageio.read_image(tmp_path / "absent.png")
    corrupt = tmp_path / "corrupt.png"
    imageio.write_image(corrupt, textured(32, 32))
    corrupt.write_bytes(corrupt.read_bytes()[:60])
    with pytest.raises(InputError, match="corrupt or truncated"):
        imageio.read_image(corrupt)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="unsupported file type"):
        imageio.read_image(tmp_path / "notes.txt")


def test_nan_in_float_file_is_refused(tmp_path):
    pixels = textured(4, 4)
    pixels[1, 1, 1] = np.nan
    imageio.write_image(tmp_path / "nan.tif", pixels, 32)
    with pytest.raises(InputError, match="NaN"):
        imageio.read_image(tmp_path / "nan.tif")


def test_pixel_limit_is_checked_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    imageio.write_image(path, textured(40, 50))
    decoded = []
    monkeypatch.setattr(imageio.cv2, "imdecode", lambda *a: decoded.append(1))
    with pytest.raises(InputError, match=r"50x40 .* over the limit"):
        imageio.read_image(path, max_pixels=1999)
    assert not decoded


def test_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(InputError, match="JPEG cannot store transparency"):
        imageio.write_image(tmp_path / "out.jpg", textured(4, 4, 4))
    with pytest.raises(InputError, match="cannot write"):
        imageio.write_image(tmp_path / "out.bmp", textured(4, 4))
    assert os.listdir(tmp_path) == []


def test_written_files_follow_the_umask(tmp_path):
    imageio.write_image(tmp_path / "x.png", textured(2, 2))
    mode = (tmp_path / "x.png").stat().st_mode & 0o777
    assert mode == 0o666 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_mask_from_alpha_or_brightness():
    rgba = np.ones((2, 2, 4), np.float32)
    rgba[0, 0, 3] = 0.0
    assert imageio.mask_from_pixels(rgba).tolist() == [[0.0, 1.0], [1.0, 1.0]]
    rgb = np.zeros((2, 2, 3), np.float32)
    rgb[1, 1] = 1.0
    assert imageio.mask_from_pixels(rgb).round(4).tolist() == [[0.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize("channels, dtype", [(3, np.uint8), (1, np.uint8), (4, np.uint8), (3, np.uint16)])
def test_read_rgb8_matches_the_float_path(tmp_path, channels, dtype):
    rng = np.random.default_rng(channels)
    top = np.iinfo(dtype).max
    samples = rng.integers(0, top + 1, (9, 11, channels)).astype(dtype)
    path = tmp_path / "map.png"
    cv2.imwrite(str(path), samples)
    fast = imageio.read_rgb8(path)
    assert fast.dtype == np.uint8 and fast.shape == (9, 11, 3)
    assert np.array_equal(fast, imageio.to_rgb8(imageio.read_image(path).pixels))
