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
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..errors import InputError
from .files import write_bytes_atomically
from .pixels import from_samples, quantise, rgb_channels, swap_red_blue

# 8192 x 8192. Peak memory of a manipulation is a few float32 copies of the image.
DEFAULT_MAX_PIXELS = 8192 * 8192

READ_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"}
# Which sample depths each format can store.
# sample type of a decoded file -> the depth an output made from it keeps
_READ_DEPTHS = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16, np.dtype(np.float16): 32, np.dtype(np.float32): 32,
                np.dtype(np.float64): 32}
_WRITE_DEPTHS = {
    ".png": (8, 16),
    ".jpg": (8,),
    ".jpeg": (8,),
    ".tif": (8, 16, 32),
    ".tiff": (8, 16, 32),
    ".webp": (8,),
}

# Silent: every failure OpenCV could log reaches the user as one InputError, and its own lines
# ("[ERROR:0@0.179] global grfmt_png.cpp ...") before that message only confuse.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


@dataclass(frozen=True)
class Picture:
    """A decoded image: pixels (H, W, C) float32, the sample depth of its file (8, 16, 32) and
    its embedded ICC colour profile, if any (written back into outputs made from it)."""

    pixels: np.ndarray
    bit_depth: int
    icc_profile: bytes | None = None


def check_pixel_limit(width: int, height: int, max_pixels: int, what: str) -> None:
    if width * height > max_pixels:
        raise InputError(
            f"{what} is {width}x{height} ({width * height / 1e6:.1f} MP), over the limit of "
            f"{max_pixels} pixels: scale it down, or raise the limit with --max-pixels "
            f"if this machine has the memory (about 64 bytes per pixel)"
        )


_pillow_limit_lock = threading.Lock()


@contextmanager
def pillow_open(source, max_pixels: int, what: str) -> Iterator[Image.Image]:
    """Pillow's image opened from a path or file object (header only), checked against the
    engine's own pixel limit on its real size. Pillow's own bomb limit (about 89 MP warns,
    179 MP refuses, reporting no real size) is off while it opens: ours is the one that holds,
    whatever --max-pixels says."""
    with _pillow_limit_lock:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            image = Image.open(source)
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    with image:
        check_pixel_limit(image.width, image.height, max_pixels, what)
        yield image


@dataclass(frozen=True)
class _Header:
    orientation: int  # EXIF orientation, 1 (as stored) to 8
    icc_profile: bytes | None


def _read_header(path: Path, max_pixels: int) -> _Header | None:
    """The header's size checked against the limit, its EXIF orientation and ICC profile; None
    when Pillow cannot identify the file (OpenCV may still decode it, and is checked then)."""
    try:
        with pillow_open(path, max_pixels, str(path)) as image:
            exif = image.info.get("exif")  # raw bytes where the header carries them: no decoding
            orientation = Image.Exif()
            if isinstance(exif, bytes):
                orientation.load(exif)
            elif image.format == "TIFF":
                orientation = image.getexif()
            value = orientation.get(ORIENTATION_TAG, 1)
            icc = image.info.get("icc_profile")
            return _Header(value if value in _ORIENTATIONS else 1, icc if isinstance(icc, bytes) and icc else None)
    except InputError:
        raise
    except Exception:
        return None


ORIENTATION_TAG = 0x0112
# EXIF orientation -> the change that shows the image upright, on (H, W, C) arrays.
_ORIENTATIONS = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}
# OpenCV applies the EXIF orientation itself when it decodes these, with the flags used here.
_OPENCV_ORIENTS = {".jpg", ".jpeg", ".tif", ".tiff"}


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode an image file into the engine's convention (see the module docstring), upright
    (EXIF orientation applied, for every format)."""
    path = Path(path)
    decoded, header = _decode(path, max_pixels)
    return Picture(*_to_engine(decoded, path), icc_profile=header.icc_profile if header else None)


def read_rgb8(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file as (H, W, 3) uint8 RGB, as `to_rgb8(read_image(path).pixels)` gives
    it (painted region maps are read so): 8-bit files without alpha skip the float copy."""
    path = Path(path)
    decoded, _ = _decode(path, max_pixels)
    if decoded.dtype == np.uint8 and (decoded.ndim == 2 or decoded.shape[2] in (1, 3)):
        if decoded.ndim == 2 or decoded.shape[2] == 1:
            return cv2.cvtColor(decoded.reshape(decoded.shape[:2]), cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    return to_rgb8(_to_engine(decoded, path)[0])


def _decode(path: Path, max_pixels: int) -> tuple[np.ndarray, _Header | None]:
    """The file's samples as OpenCV decodes them, upright, after the checks of `read_image`;
    and what its header says."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in READ_SUFFIXES:
        raise InputError(
            f"{path}: unsupported file type '{path.suffix}'; use PNG, JPEG, TIFF or WebP"
        )
    header = _read_header(path, max_pixels)
    data = np.fromfile(path, dtype=np.uint8)  # works with any path, unlike cv2.imread
    if data.size == 0:
        raise InputError(f"{path}: the file is empty")
    # JPEG is always 8-bit RGB or grey: decode as colour so that its EXIF orientation applies.
    try:
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR if suffix in (".jpg", ".jpeg") else cv2.IMREAD_UNCHANGED)
    except cv2.error:
        decoded = None
    if decoded is None or decoded.size == 0:
        raise InputError(f"{path}: cannot decode this file; it may be corrupt or truncated")
    if header is None:
        check_pixel_limit(decoded.shape[1], decoded.shape[0], max_pixels, str(path))
        if suffix in (".tif", ".tiff"):  # float TIFF, which Pillow cannot open
            header = _Header(1, _tiff_icc(data.tobytes()))
    elif suffix not in _OPENCV_ORIENTS and header.orientation != 1:
        decoded = np.ascontiguousarray(_ORIENTATIONS[header.orientation](decoded))
    return decoded, header


def _to_engine(decoded: np.ndarray, path: Path) -> tuple[np.ndarray, int]:
    if decoded.ndim == 2:
        decoded = decoded[:, :, None]
    channels = decoded.shape[2]
    if channels not in (1, 3, 4):
        raise InputError(f"{path}: images with {channels} channels are not supported")
    decoded = swap_red_blue(decoded)
    if decoded.dtype not in _READ_DEPTHS:
        raise InputError(f"{path}: unsupported sample type {decoded.dtype}")
    pixels, depth = from_samples(decoded), _READ_DEPTHS[decoded.dtype]
    if depth == 32 and not np.isfinite(pixels).all():
        raise InputError(f"{path}: the image holds NaN or infinite values")
    return np.ascontiguousarray(pixels), depth


def encode_image(pixels: np.ndarray, suffix: str, bit_depth: int = 8, icc_profile: bytes | None = None) -> bytes:
    """Encode (H, W, C) engine pixels as a file of the given suffix, with `icc_profile`
    embedded when given.

    The depth falls back to the deepest the format stores (JPEG and WebP: 8-bit). Integer depths
    clip to [0, 1]; float TIFF keeps values as they are.
    """
    suffix = suffix.lower()
    pixels = _as_hwc(pixels)
    _check_format(suffix, pixels.shape[2])
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
    data = buffer.tobytes()
    return _ICC_EMBEDDERS[suffix](data, icc_profile, pixels.shape) if icc_profile else data


def _check_format(suffix: str, channels: int) -> None:
    """What a file format can hold: the suffixes written, and no transparency in JPEG."""
    if suffix not in _WRITE_DEPTHS:
        raise InputError(f"cannot write '{suffix or 'no suffix'}' files; use .png, .jpg, .tif or .webp")
    if channels == 4 and suffix in (".jpg", ".jpeg"):
        raise InputError("JPEG cannot store transparency; write a .png, .tif or .webp file")


def check_output(path: str | os.PathLike, channels: int, inputs: tuple[str | os.PathLike, ...] = ()) -> None:
    """Refuse, before any work is done, an output `write_image` would refuse or that would
    replace one of `inputs`: an unknown suffix, transparency (`channels` 4) into JPEG, a folder
    that does not exist or cannot be written to, a folder where the file should be."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder: give the name of the file to write")
    try:
        _check_format(path.suffix.lower(), channels)
    except InputError as problem:
        raise InputError(f"{path}: {problem}") from None
    if not path.parent.is_dir():
        raise InputError(f"{path}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InputError(f"{path}: the folder {path.parent} is not writable")
    for given in inputs:
        if path.exists() and Path(given).exists() and os.path.samefile(path, given):
            raise InputError(f"{path} is one of the inputs: write the result to a new file (inputs are never written)")


def write_image(path: str | os.PathLike, pixels: np.ndarray, bit_depth: int = 8, icc_profile: bytes | None = None) -> None:
    """Write engine pixels to `path` atomically (temporary file, then rename)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"{path}: the folder {path.parent} does not exist")
    write_bytes_atomically(path, encode_image(pixels, path.suffix, bit_depth, icc_profile))


# ICC profiles go into OpenCV's encoded bytes (OpenCV writes none): each format's own place.

def _png_with_icc(data: bytes, profile: bytes, shape) -> bytes:
    """An iCCP chunk right after IHDR (8-byte signature + 25-byte IHDR chunk)."""
    body = b"iCCP" + b"ICC profile\x00\x00" + zlib.compress(profile)
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return data[:33] + chunk + data[33:]


def _jpeg_with_icc(data: bytes, profile: bytes, shape) -> bytes:
    """APP2 ICC_PROFILE segments (at most 65519 profile bytes each) after SOI and any APP0."""
    pieces = [profile[i : i + 65519] for i in range(0, len(profile), 65519)]
    segments = b"".join(
        b"\xff\xe2" + struct.pack(">H", 2 + 14 + len(piece)) + b"ICC_PROFILE\x00" + bytes([number, len(pieces)]) + piece
        for number, piece in enumerate(pieces, 1))
    at = 2
    if data[2:4] == b"\xff\xe0":
        at = 4 + struct.unpack(">H", data[4:6])[0]
    return data[:at] + segments + data[at:]


def _webp_with_icc(data: bytes, profile: bytes, shape) -> bytes:
    """The extended layout: a VP8X chunk (ICC flag, alpha flag, canvas size), the ICCP chunk,
    then OpenCV's image chunk."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return kind + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) % 2 else b"")

    height, width, channels = shape
    flags = 0x20 | (0x10 if channels == 4 else 0)
    vp8x = bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    payload = b"WEBP" + chunk(b"VP8X", vp8x) + chunk(b"ICCP", profile) + data[12:]
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


def _tiff_with_icc(data: bytes, profile: bytes, shape) -> bytes:
    """The first IFD rewritten at the end of the file with tag 34675 (ICC profile) added; its
    other entries keep pointing at their data where it is."""
    found = _tiff_first_ifd(data)
    if found is None:
        return data  # not a classic TIFF (OpenCV writes none other at these sizes)
    order, first, count = found
    entries = [data[first + 2 + 12 * i : first + 14 + 12 * i] for i in range(count)]
    next_ifd = data[first + 2 + 12 * count : first + 6 + 12 * count]
    out = bytearray(data)
    out += b"\x00" * (len(out) % 2)
    profile_at = len(out)
    out += profile + b"\x00" * (len(profile) % 2)
    entries.append(struct.pack(order + "HHII", 34675, 7, len(profile), profile_at))
    entries.sort(key=lambda entry: struct.unpack(order + "H", entry[:2])[0])
    ifd_at = len(out)
    out += struct.pack(order + "H", len(entries)) + b"".join(entries) + next_ifd
    out[4:8] = struct.pack(order + "I", ifd_at)
    return bytes(out)


def _tiff_first_ifd(data: bytes) -> tuple[str, int, int] | None:
    """A classic TIFF's byte order, its first IFD's offset and entry count; None for anything else."""
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    try:
        if order is None or struct.unpack(order + "H", data[2:4])[0] != 42:
            return None
        (first,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[first : first + 2])
    except struct.error:  # a truncated header
        return None
    return order, first, count


def _tiff_icc(data: bytes) -> bytes | None:
    """The ICC profile (tag 34675) of a classic TIFF's first IFD, or None."""
    found = _tiff_first_ifd(data)
    if found is None:
        return None
    order, first, count = found
    try:
        for index in range(count):
            tag, _, length, offset = struct.unpack(order + "HHII", data[first + 2 + 12 * index : first + 14 + 12 * index])
            if tag == 34675 and length > 4 and offset + length <= len(data):
                return data[offset : offset + length]
    except struct.error:  # a truncated header: no profile
        return None
    return None


_ICC_EMBEDDERS = {".png": _png_with_icc, ".jpg": _jpeg_with_icc, ".jpeg": _jpeg_with_icc, ".webp": _webp_with_icc,
                  ".tif": _tiff_with_icc, ".tiff": _tiff_with_icc}


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
    rgb = rgb_channels(pixels)
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
