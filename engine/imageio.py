"""Reading and writing images and masks.

The pixel convention, stated once for the whole engine: an image is a float32 array (H, W, C)
with C in {1, 3, 4} (grey, RGB, RGBA), channels in R, G, B, A order, alpha straight (not
premultiplied). Integer files are scaled to [0, 1] (8-bit by 255, 16-bit by 65535); float files
keep their values. Values stay in the file's own encoding (usually sRGB): nothing is linearised,
because the engine only ever resamples the exemplar's own pixels, never mixes in new colours.

Decoding goes through OpenCV, which reads 8/16-bit and float PNG, JPEG, TIFF and WebP alike;
Pillow reads only the header first, so an image over the pixel limit is refused before it is
decoded. Writes go to a temporary file that is renamed into place: a failed run leaves no
partial output.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .errors import InputError

# 8192 x 8192. Peak memory of a manipulation is a few float32 copies of the image.
DEFAULT_MAX_PIXELS = 8192 * 8192

READ_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"}
# Which sample depths each format can store.
_WRITE_DEPTHS = {
    ".png": (8, 16),
    ".jpg": (8,),
    ".jpeg": (8,),
    ".tif": (8, 16, 32),
    ".tiff": (8, 16, 32),
    ".webp": (8,),
}

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # errors only: OpenCV's TIFF warnings are noise for the user.


@dataclass(frozen=True)
class Picture:
    """A decoded image: pixels (H, W, C) float32 and the sample depth of its file (8, 16, 32)."""

    pixels: np.ndarray
    bit_depth: int

    @property
    def has_alpha(self) -> bool:
        return self.pixels.shape[2] == 4


def check_pixel_limit(width: int, height: int, max_pixels: int, what: str) -> None:
    if width * height > max_pixels:
        raise InputError(
            f"{what} is {width}x{height} ({width * height / 1e6:.1f} MP), over the limit of "
            f"{max_pixels / 1e6:.1f} MP: scale it down, or raise the limit with --max-pixels "
            f"if this machine has the memory (about 64 bytes per pixel)"
        )


def _peek_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the header alone, or None when Pillow cannot identify the file."""
    try:
        with Image.open(path) as im:
            return im.size
    except Image.DecompressionBombError:
        return (1 << 16, 1 << 16)  # over any sane limit; the caller reports it
    except Exception:
        return None


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode an image file into the engine's convention (see the module docstring)."""
    path = Path(path)
    return Picture(*_to_engine(_decode(path, max_pixels), path))


def read_rgb8(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file as (H, W, 3) uint8 RGB, as `to_rgb8(read_image(path).pixels)` gives
    it (painted region maps are read so): 8-bit files without alpha skip the float copy."""
    path = Path(path)
    decoded = _decode(path, max_pixels)
    if decoded.dtype == np.uint8 and (decoded.ndim == 2 or decoded.shape[2] in (1, 3)):
        if decoded.ndim == 2 or decoded.shape[2] == 1:
            return cv2.cvtColor(decoded.reshape(decoded.shape[:2]), cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    return to_rgb8(_to_engine(decoded, path)[0])


def _decode(path: Path, max_pixels: int) -> np.ndarray:
    """The file's samples as OpenCV decodes them, after the checks of `read_image`."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() not in READ_SUFFIXES:
        raise InputError(
            f"{path}: unsupported file type '{path.suffix}'; use PNG, JPEG, TIFF or WebP"
        )
    size = _peek_size(path)
    if size is not None:
        check_pixel_limit(*size, max_pixels, str(path))
    data = np.fromfile(path, dtype=np.uint8)  # works with any path, unlike cv2.imread
    # JPEG is always 8-bit RGB or grey: decode as colour so that its EXIF orientation applies.
    is_jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR if is_jpeg else cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.size == 0:
        raise InputError(f"{path}: cannot decode this file; it may be corrupt or truncated")
    if size is None:
        check_pixel_limit(decoded.shape[1], decoded.shape[0], max_pixels, str(path))
    return decoded


def _to_engine(decoded: np.ndarray, path: Path) -> tuple[np.ndarray, int]:
    if decoded.ndim == 2:
        decoded = decoded[:, :, None]
    channels = decoded.shape[2]
    if channels not in (1, 3, 4):
        raise InputError(f"{path}: images with {channels} channels are not supported")
    decoded = swap_red_blue(decoded)
    if decoded.dtype == np.uint8:
        pixels, depth = np.divide(decoded, np.float32(255), dtype=np.float32), 8  # one pass
    elif decoded.dtype == np.uint16:
        pixels, depth = np.divide(decoded, np.float32(65535), dtype=np.float32), 16
    elif decoded.dtype in (np.float16, np.float32, np.float64):
        pixels, depth = decoded.astype(np.float32), 32
        if not np.isfinite(pixels).all():
            raise InputError(f"{path}: the image holds NaN or infinite values")
    else:
        raise InputError(f"{path}: unsupported sample type {decoded.dtype}")
    return np.ascontiguousarray(pixels), depth


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


def encode_image(pixels: np.ndarray, suffix: str, bit_depth: int = 8) -> bytes:
    """Encode (H, W, C) engine pixels as a file of the given suffix.

    The depth falls back to the deepest the format stores (JPEG and WebP: 8-bit). Integer depths
    clip to [0, 1]; float TIFF keeps values as they are.
    """
    suffix = suffix.lower()
    if suffix not in _WRITE_DEPTHS:
        raise InputError(f"cannot write '{suffix}' files; use .png, .jpg, .tif or .webp")
    pixels = _as_hwc(pixels)
    if pixels.shape[2] == 4 and suffix in (".jpg", ".jpeg"):
        raise InputError("JPEG cannot store transparency; write a .png, .tif or .webp file")
    depths = _WRITE_DEPTHS[suffix]
    depth = bit_depth if bit_depth in depths else max(d for d in depths if d <= max(bit_depth, 8))
    if depth == 32:
        samples = pixels.astype(np.float32)
    else:
        samples = quantise(pixels, np.uint8 if depth == 8 else np.uint16)
    samples = swap_red_blue(samples)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if suffix in (".jpg", ".jpeg") else []
    ok, buffer = cv2.imencode(suffix, np.ascontiguousarray(samples), params)
    if not ok:
        raise RuntimeError(f"OpenCV failed to encode a {samples.shape} {samples.dtype} image")
    return buffer.tobytes()


def write_image(path: str | os.PathLike, pixels: np.ndarray, bit_depth: int = 8) -> None:
    """Write engine pixels to `path` atomically (temporary file, then rename)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"{path}: the folder {path.parent} does not exist")
    data = encode_image(pixels, path.suffix, bit_depth)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o666 & ~current_umask())  # mkstemp makes it private; honour the umask
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_mask(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A mask file as (H, W) float32 in [0, 1]: its alpha if it has a non-opaque alpha
    channel, otherwise its brightness (white = selected)."""
    return mask_from_pixels(read_image(path, max_pixels).pixels)


def mask_from_pixels(pixels: np.ndarray) -> np.ndarray:
    """(H, W, C) engine pixels -> (H, W) float32 mask in [0, 1] (see `read_mask`)."""
    pixels = _as_hwc(pixels)
    if pixels.shape[2] == 4 and pixels[:, :, 3].min() < 1.0:
        mask = pixels[:, :, 3]
    elif pixels.shape[2] >= 3:
        mask = pixels[:, :, :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    else:
        mask = pixels[:, :, 0]
    return np.clip(mask, 0.0, 1.0).astype(np.float32)


def to_rgb8(pixels: np.ndarray) -> np.ndarray:
    """Engine pixels -> (H, W, 3) uint8 for display (alpha composited over mid grey)."""
    pixels = _as_hwc(pixels)
    rgb = pixels[:, :, :3] if pixels.shape[2] >= 3 else np.repeat(pixels[:, :, :1], 3, axis=2)
    if pixels.shape[2] == 4:
        alpha = pixels[:, :, 3:4]
        rgb = rgb * alpha + 0.5 * (1.0 - alpha)
    return quantise(rgb, np.uint8)


def _as_hwc(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        return pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {pixels.shape}")
    return pixels
