"""OpenRaster (.ora), the layered format Krita and GIMP both read and write: a zip holding
`mimetype`, `stack.xml`, one PNG per layer, a merged image and a thumbnail.

Read: every paint layer of the stack (nested stacks are walked; a layer's `path` names its
stacks), with its name, offsets, opacity, visibility and composite op, its pixels as engine
float32 RGBA. Write: a new file from a list of such layers, top first, in one stack (groups are
not recreated). Writes are atomic.
"""

from __future__ import annotations

import io
import os
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import InputError
from .imageio import DEFAULT_MAX_PIXELS, check_pixel_limit, current_umask, quantise

MIMETYPE = b"image/openraster"
THUMBNAIL_SIDE = 256


@dataclass(frozen=True)
class Layer:
    name: str
    pixels: np.ndarray  # (h, w, 4) float32, straight alpha, in [0, 1]
    x: int = 0
    y: int = 0
    opacity: float = 1.0
    visible: bool = True
    composite_op: str = "svg:src-over"
    path: tuple[str, ...] = field(default=())  # names of the stacks it sits in, outermost first

    def placed(self, width: int, height: int) -> np.ndarray:
        """The layer on a transparent width x height canvas: (H, W, 4)."""
        canvas = np.zeros((height, width, 4), np.float32)
        h, w = self.pixels.shape[:2]
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = min(width, self.x + w), min(height, self.y + h)
        if x0 < x1 and y0 < y1:
            canvas[y0:y1, x0:x1] = self.pixels[y0 - self.y : y1 - self.y, x0 - self.x : x1 - self.x]
        return canvas


@dataclass(frozen=True)
class Document:
    width: int
    height: int
    layers: list[Layer]  # top first, as in stack.xml


def read_ora(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Document:
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise InputError(f"{path} does not exist") from None
    except zipfile.BadZipFile:
        raise InputError(f"{path} is not an OpenRaster file (not a zip archive)") from None
    with archive:
        names = set(archive.namelist())
        if "stack.xml" not in names:
            raise InputError(f"{path} is not an OpenRaster file (no stack.xml)")
        try:
            root = ET.fromstring(archive.read("stack.xml"))
        except ET.ParseError as error:
            raise InputError(f"the layer list of {path} is damaged: {error}") from None
        width, height = int(root.get("w", 0)), int(root.get("h", 0))
        if width < 1 or height < 1:
            raise InputError(f"{path} gives no canvas size")
        check_pixel_limit(width, height, max_pixels, str(path))
        layers = []
        stack = root.find("stack")
        if stack is None:
            raise InputError(f"{path} has no layer stack")
        for element, stacks in _walk(stack, ()):
            source = element.get("src", "")
            if source not in names:
                raise InputError(f"{path}: layer '{element.get('name', '')}' points to {source!r}, which is missing")
            layers.append(
                Layer(
                    name=element.get("name", ""),
                    pixels=_decode_png(archive.read(source), f"{path}:{source}", max_pixels),
                    x=int(float(element.get("x", 0))),
                    y=int(float(element.get("y", 0))),
                    opacity=float(element.get("opacity", 1.0)),
                    visible=element.get("visibility", "visible") != "hidden",
                    composite_op=element.get("composite-op", "svg:src-over"),
                    path=stacks,
                )
            )
    return Document(width, height, layers)


def _walk(stack, stacks):
    for child in stack:
        if child.tag == "layer":
            yield child, stacks
        elif child.tag == "stack":
            yield from _walk(child, stacks + (child.get("name", ""),))


def _decode_png(data: bytes, what: str, max_pixels: int) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as image:
            check_pixel_limit(image.width, image.height, max_pixels, what)
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
    files = []
    for index, layer in enumerate(document.layers):
        source = f"data/layer{index:03d}.png"
        ET.SubElement(top, "layer", {
            "name": layer.name, "src": source, "x": str(layer.x), "y": str(layer.y),
            "opacity": f"{layer.opacity:.4f}", "visibility": "visible" if layer.visible else "hidden",
            "composite-op": layer.composite_op,
        })
        files.append((source, _encode_png(layer.pixels)))
    merged = flatten(document)
    thumbnail = Image.fromarray(quantise(merged, np.uint8))
    thumbnail.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(descriptor)
    try:
        with zipfile.ZipFile(temporary, "w") as archive:
            archive.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, compress_type=zipfile.ZIP_STORED)
            archive.writestr("stack.xml", ET.tostring(stack, encoding="utf-8", xml_declaration=True))
            for source, data in files:
                archive.writestr(source, data, compress_type=zipfile.ZIP_STORED)  # PNG is compressed
            archive.writestr("mergedimage.png", _encode_png(merged), compress_type=zipfile.ZIP_STORED)
            buffer = io.BytesIO()
            thumbnail.save(buffer, "PNG")
            archive.writestr("Thumbnails/thumbnail.png", buffer.getvalue(), compress_type=zipfile.ZIP_STORED)
        os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def flatten(document: Document) -> np.ndarray:
    """Visible layers over each other (source-over, with opacity), bottom up: (H, W, 4)."""
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

