"""OpenRaster (.ora), the layered format Krita and GIMP both read and write: a zip holding
`mimetype`, `stack.xml`, one PNG per layer, a merged image and a thumbnail.

Read: the stack (nested stacks are walked; a layer's `path` names its stacks) with each paint
layer's name, offsets, opacity, visibility and composite op. A layer's pixels (engine float32
RGBA) are decoded only when asked for, one layer at a time, so planning a batch decodes nothing.
The file is untrusted: `stack.xml` is read with a size cap, every attribute is checked, and each
layer's PNG header is read before its pixels: a layer over the pixel limit, or a member that
would inflate past what its header's size can need, is refused before it is inflated.

Write: a new file from a list of layers, top first, in one stack (groups are not recreated).
Layers read from a file are copied as their own PNG bytes, not decoded and encoded again; the
merged image is composited one layer at a time. Writes are atomic.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from .files import write_atomically
from .imageio import DEFAULT_MAX_PIXELS, check_pixel_limit, pillow_open
from .pixels import quantise

MIMETYPE = b"image/openraster"
THUMBNAIL_SIDE = 256
STACK_XML_LIMIT = 4 << 20  # bytes; a real stack.xml of a thousand layers is well under 1 MB
MAX_LAYERS = 4096
MAX_NESTING = 64
MAX_OFFSET = 1 << 20  # pixels: a layer further off the canvas than this is damage, not art
# A PNG member may be larger than its raw pixel rows only by deflate's framing and its other
# chunks (ICC profile, text); this much slack covers both.
PNG_SLACK_BYTES = 8 << 20
_WHOLE = re.compile(r"[+-]?[0-9]{1,8}(\.0*)?")  # "12", "-3", "12.0": what writers put in x, y, w and h
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel


class Layer:
    """One paint layer. `pixels` (h, w, 4) float32, straight alpha, in [0, 1]: given, or
    decoded from the file on each access (`decode`); `png()` gives PNG bytes to store it."""

    def __init__(self, name: str, pixels: np.ndarray | None = None, x: int = 0, y: int = 0, opacity: float = 1.0,
                 visible: bool = True, composite_op: str = "svg:src-over", path: tuple[str, ...] = (), *,
                 decode: Callable[[], np.ndarray] | None = None, encoded: Callable[[], bytes] | None = None):
        if (pixels is None) == (decode is None):
            raise ValueError("a layer needs either its pixels or a way to decode them")
        self.name, self.x, self.y, self.opacity, self.visible = name, x, y, opacity, visible
        self.composite_op, self.path = composite_op, path
        self._pixels, self._decode, self._encoded = pixels, decode, encoded

    @property
    def pixels(self) -> np.ndarray:
        if self._pixels is not None:
            return self._pixels
        assert self._decode is not None  # __init__ takes one or the other
        return self._decode()

    def png(self) -> bytes:
        return self._encoded() if self._encoded is not None else _encode_png(self.pixels)

    def placed(self, width: int, height: int) -> np.ndarray:
        """The layer on a transparent width x height canvas: (H, W, 4)."""
        pixels = self.pixels
        canvas = np.zeros((height, width, 4), np.float32)
        h, w = pixels.shape[:2]
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = min(width, self.x + w), min(height, self.y + h)
        if x0 < x1 and y0 < y1:
            canvas[y0:y1, x0:x1] = pixels[y0 - self.y : y1 - self.y, x0 - self.x : x1 - self.x]
        return canvas


@dataclass(frozen=True)
class Document:
    width: int
    height: int
    layers: list[Layer]  # top first, as in stack.xml


def read_ora(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Document:
    """The document's canvas and layer stack, checked; no layer is decoded yet."""
    path = Path(path)
    with _open_zip(path) as archive:
        members = {info.filename: info for info in archive.infolist()}
        if "stack.xml" not in members:
            raise InputError(f"{path} is not an OpenRaster file (no stack.xml)")
        root = _parse_stack(path, _read_member(archive, members["stack.xml"], STACK_XML_LIMIT, f"{path}:stack.xml"))
        width, height = (_integer(root, key, None, 1, 1 << 20, f"{path}: the canvas") for key in ("w", "h"))
        check_pixel_limit(width, height, max_pixels, str(path))
        stack = root.find("stack")
        if stack is None:
            raise InputError(f"{path} has no layer stack")
        layers: list[Layer] = []
        for element, stacks in _walk(stack, path):
            name = element.get("name", "")
            what = f"{path}: layer '{name[:80]}'"
            source = element.get("src", "")
            if source not in members:
                raise InputError(f"{what} points to {source[:200]!r}, which is missing")
            if len(layers) == MAX_LAYERS:
                raise InputError(f"{path} has more than {MAX_LAYERS} layers")
            limit = _png_member_limit(archive, members[source], max_pixels, f"{path}:{source}")
            layers.append(Layer(
                name, x=_integer(element, "x", 0, -MAX_OFFSET, MAX_OFFSET, what),
                y=_integer(element, "y", 0, -MAX_OFFSET, MAX_OFFSET, what),
                opacity=_opacity(element, what), visible=element.get("visibility", "visible") != "hidden",
                composite_op=element.get("composite-op", "svg:src-over"), path=stacks,
                decode=_member_decoder(path, source, limit, max_pixels), encoded=_member_reader(path, source, limit),
            ))
    return Document(width, height, layers)


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise InputError(f"{path} does not exist") from None
    except (zipfile.BadZipFile, OSError) as error:
        raise InputError(f"{path} is not an OpenRaster file (not a readable zip archive: {error})") from None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, what: str) -> bytes:
    """The member's bytes, inflated as a stream and never past `limit` bytes (its declared size
    is checked first; zipfile stops at the declared size, so a lying header cannot inflate more)."""
    if info.file_size > limit:
        raise InputError(f"{what} would inflate to {info.file_size} bytes, more than the {limit} it can need: "
                         "the file is damaged or hostile")
    try:
        with archive.open(info) as member:
            data = member.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as error:
        raise InputError(f"{what} cannot be read from the archive ({error})") from None
    if len(data) > limit:
        raise InputError(f"{what} inflates past {limit} bytes: the file is damaged or hostile")
    return data


def _parse_stack(path: Path, data: bytes) -> ET.Element:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as error:
        raise InputError(f"the layer list of {path} is damaged: {error}") from None
    if root.tag != "image":
        raise InputError(f"the layer list of {path} does not start with <image>")
    return root


def _walk(stack: ET.Element, path: Path):
    """(layer element, names of its stacks) for every layer, top first; nesting is bounded."""
    pending: list[tuple[Iterator[ET.Element], tuple[str, ...]]] = [(iter(stack), ())]
    while pending:
        children, stacks = pending[-1]
        child = next(children, None)
        if child is None:
            pending.pop()
        elif child.tag == "layer":
            yield child, stacks
        elif child.tag == "stack":
            if len(pending) >= MAX_NESTING:
                raise InputError(f"{path}: layer groups are nested more than {MAX_NESTING} deep")
            pending.append((iter(child), stacks + (child.get("name", ""),)))


def _integer(element: ET.Element, key: str, default: int | None, low: int, high: int, what: str) -> int:
    """An integer attribute in [low, high]; whole numbers written as decimals ("12.0") pass."""
    text = element.get(key)
    if text is None:
        if default is None:
            raise InputError(f"{what} has no '{key}'")
        return default
    value = int(float(text)) if _WHOLE.fullmatch(text.strip()) else None
    if value is None or not low <= value <= high:
        raise InputError(f"{what}: {key}={text[:40]!r} is not a whole number from {low} to {high}")
    return value


def _opacity(element: ET.Element, what: str) -> float:
    text = element.get("opacity", "1")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputError(f"{what}: opacity={text[:40]!r} is not a number from 0 to 1")
    return min(1.0, max(0.0, value))  # writers round to just outside [0, 1] at times


def _png_member_limit(archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_pixels: int, what: str) -> int:
    """Read the layer's PNG header only: its size must be within the pixel limit, and the most
    bytes the member may inflate to follows from it."""
    try:
        with archive.open(info) as member:
            head = member.read(33)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as error:
        raise InputError(f"{what} cannot be read from the archive ({error})") from None
    if len(head) < 33 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise InputError(f"{what} is not a PNG image")
    width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
    if width < 1 or height < 1 or colour not in _PNG_CHANNELS or depth not in (1, 2, 4, 8, 16):
        raise InputError(f"{what} has a damaged PNG header")
    check_pixel_limit(width, height, max_pixels, what)
    row = (width * _PNG_CHANNELS[colour] * depth + 7) // 8 + 1
    raw = row * height
    limit = raw + raw // 100 + PNG_SLACK_BYTES
    if info.file_size > limit:
        raise InputError(f"{what} would inflate to {info.file_size} bytes, more than the {limit} a {width}x{height} "
                         "layer can need: the file is damaged or hostile")
    return limit


def _member_reader(path: Path, source: str, limit: int) -> Callable[[], bytes]:
    def read() -> bytes:
        with _open_zip(path) as archive:
            try:
                info = archive.getinfo(source)
            except KeyError:
                raise InputError(f"{path}: {source[:200]!r} is gone (the file changed while it was in use)") from None
            return _read_member(archive, info, limit, f"{path}:{source}")

    return read


def _member_decoder(path: Path, source: str, limit: int, max_pixels: int) -> Callable[[], np.ndarray]:
    read = _member_reader(path, source, limit)
    return lambda: _decode_png(read(), f"{path}:{source}", max_pixels)


def _decode_png(data: bytes, what: str, max_pixels: int) -> np.ndarray:
    try:
        with pillow_open(io.BytesIO(data), max_pixels, what) as image:
            if image.format != "PNG":
                raise InputError(f"{what} is not a PNG image")
            if image.mode in ("I;16", "I;16B", "I"):
                values = np.asarray(image, np.float32) / 65535.0
                return np.dstack([values] * 3 + [np.ones_like(values)]).astype(np.float32)
            rgba = np.asarray(image.convert("RGBA"), np.float32) / 255.0
    except InputError:
        raise
    except Exception as error:  # Pillow raises many kinds for a damaged PNG
        raise InputError(f"{what} is not a readable PNG ({error})") from None
    return rgba


def write_ora(path: str | os.PathLike, document: Document) -> None:
    """Write `document` (layers top first) as a new .ora, atomically."""
    path = Path(path)
    stack = ET.Element("image", {"version": "0.0.3", "w": str(document.width), "h": str(document.height)})
    top = ET.SubElement(stack, "stack")
    sources = []
    for index, layer in enumerate(document.layers):
        source = f"data/layer{index:03d}.png"
        ET.SubElement(top, "layer", {
            "name": layer.name, "src": source, "x": str(layer.x), "y": str(layer.y),
            "opacity": f"{layer.opacity:.4f}", "visibility": "visible" if layer.visible else "hidden",
            "composite-op": layer.composite_op,
        })
        sources.append(source)
    merged = flatten(document)
    thumbnail = Image.fromarray(quantise(merged, np.uint8))
    thumbnail.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))

    def write(out) -> None:
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, compress_type=zipfile.ZIP_STORED)
            archive.writestr("stack.xml", ET.tostring(stack, encoding="utf-8", xml_declaration=True))
            for source, layer in zip(sources, document.layers):  # one layer's PNG in memory at a time
                archive.writestr(source, layer.png(), compress_type=zipfile.ZIP_STORED)  # PNG is compressed
            archive.writestr("mergedimage.png", _encode_png(merged), compress_type=zipfile.ZIP_STORED)
            buffer = io.BytesIO()
            thumbnail.save(buffer, "PNG")
            archive.writestr("Thumbnails/thumbnail.png", buffer.getvalue(), compress_type=zipfile.ZIP_STORED)

    write_atomically(path, write)


def flatten(document: Document) -> np.ndarray:
    """Visible layers over each other (source-over, with opacity), bottom up, decoding one layer
    at a time: (H, W, 4)."""
    out = np.zeros((document.height, document.width, 4), np.float32)
    for layer in reversed(document.layers):
        if not layer.visible:
            continue
        top = layer.placed(document.width, document.height)
        alpha = top[:, :, 3:] * layer.opacity
        out_alpha = alpha + out[:, :, 3:] * (1 - alpha)
        colour = (top[:, :, :3] * alpha + out[:, :, :3] * out[:, :, 3:] * (1 - alpha)) / np.maximum(out_alpha, 1e-12)
        out = np.concatenate([colour, out_alpha], axis=2)
    return out


def _encode_png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(quantise(pixels, np.uint8), "RGBA").save(buffer, "PNG", compress_level=4)
    return buffer.getvalue()
