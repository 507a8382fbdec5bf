"""Samples as hosts and files hold them <-> engine pixels, (H, W, C) float32 in [0, 1].

Hosts send uint8, uint16, float16 or float32 samples in RGB(A) or BGR(A) order; files decode to
those too (OpenCV's BGR). Integer samples are scaled by their full value; floats are taken as
they are.
"""

from __future__ import annotations

import cv2
import numpy as np

SAMPLE_TYPES = {"uint8": np.uint8, "uint16": np.uint16, "int32": np.int32, "float16": np.float16, "float32": np.float32}
# The sample value of full intensity, for the types an image may have.
FULL_SCALE = {"uint8": 255.0, "uint16": 65535.0, "float16": 1.0, "float32": 1.0}


def from_samples(samples: np.ndarray) -> np.ndarray:
    """uint8, uint16 or float samples (H, W, C) -> pixels (H, W, C) float32, in one pass."""
    scale = FULL_SCALE.get(samples.dtype.name, 1.0)
    return np.divide(samples, np.float32(scale), dtype=np.float32)


def to_samples(pixels: np.ndarray, dtype: str, order: str = "rgba", out: np.ndarray | None = None) -> np.ndarray:
    """Pixels (H, W, C) -> C-contiguous samples of `dtype` in `order` ("rgba" or "bgra"),
    written into `out` (H, W, C) when given."""
    if order == "bgra":
        pixels = swap_red_blue(pixels)
    if out is None:
        out = np.empty(pixels.shape, SAMPLE_TYPES[dtype])
    if dtype.startswith("float"):
        np.copyto(out, pixels, casting="same_kind")
        return out
    return quantise(pixels, SAMPLE_TYPES[dtype], out)


def quantise(pixels: np.ndarray, dtype, out: np.ndarray | None = None) -> np.ndarray:
    """Pixels (H, W, C) in [0, 1] -> uint8 or uint16 samples (H, W, C), rounded, out-of-range
    values clipped, in one pass (OpenCV's saturating multiply; numpy's clip and cast took three
    full-size temporaries), written into `out` when given."""
    dtype = np.dtype(dtype)
    if out is None:
        out = np.empty(pixels.shape, dtype)
    rows = np.ascontiguousarray(pixels, np.float32).reshape(pixels.shape[0], -1)  # one channel: the scalar applies to all
    top, depth = (255.0, cv2.CV_8U) if dtype == np.uint8 else (65535.0, cv2.CV_16U)
    cv2.multiply(rows, top, dst=out.reshape(rows.shape), dtype=depth)
    return out


def swap_red_blue(samples: np.ndarray) -> np.ndarray:
    """RGB(A) <-> BGR(A) (OpenCV's order), (H, W, C) -> a new (H, W, C); grey unchanged."""
    channels = samples.shape[2]
    if channels not in (3, 4):
        return samples
    if samples.dtype in (np.uint8, np.uint16, np.float32):
        code = cv2.COLOR_BGR2RGB if channels == 3 else cv2.COLOR_BGRA2RGBA
        return cv2.cvtColor(np.ascontiguousarray(samples), code).reshape(samples.shape)
    return np.ascontiguousarray(samples[:, :, [2, 1, 0, 3][:channels]])


def rgb_channels(pixels: np.ndarray) -> np.ndarray:
    """Pixels (H, W, C) -> their colour (H, W, 3): RGB(A)'s first three channels (a view), or
    grey repeated; alpha is dropped."""
    return pixels[:, :, :3] if pixels.shape[2] >= 3 else np.repeat(pixels[:, :, :1], 3, axis=2)
