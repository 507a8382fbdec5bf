"""Every call into GIMP that the plug-in makes, and nothing else (GIMP 3.0 API, works on 3.2).

Pixels cross as bytes in babl formats: "R'G'B'A u8", "R'G'B'A u16" or "R'G'B'A float" (the
image's own values, perceptual encoding, straight alpha), masks as "Y u8" or "Y float".
"""

from __future__ import annotations

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

# sample type of the engine's Image -> babl format of an RGBA read or write
FORMATS = {"uint8": "R'G'B'A u8", "uint16": "R'G'B'A u16", "float32": "R'G'B'A float"}
MASK_FORMAT = "Y u8"


def canvas_size(image: Gimp.Image) -> tuple[int, int]:
    return image.get_width(), image.get_height()


def base_type(image: Gimp.Image) -> str:
    """"RGB", "GRAY" or "INDEXED"."""
    base = image.get_base_type()
    return {Gimp.ImageBaseType.RGB: "RGB", Gimp.ImageBaseType.GRAY: "GRAY"}.get(base, "INDEXED")


def sample_type(image: Gimp.Image) -> str:
    """The engine dtype that holds this image's precision without loss (float for the rest)."""
    name = image.get_precision().value_name
    if "_U8_" in name:
        return "uint8"
    if "_U16_" in name:
        return "uint16"
    return "float32"


def item_name(item: Gimp.Item) -> str:
    return item.get_name()


def is_layer(drawable: Gimp.Drawable) -> bool:
    return isinstance(drawable, Gimp.Layer) and not isinstance(drawable, Gimp.LayerMask)


def read_on_canvas(image: Gimp.Image, drawable: Gimp.Drawable, dtype: str) -> bytes:
    """The drawable's pixels over the whole canvas (transparent where it does not reach), as
    RGBA bytes of `dtype`: layers may be smaller than the canvas and offset."""
    width, height = canvas_size(image)
    _, x, y = drawable.get_offsets()
    buffer = drawable.get_buffer()
    data = buffer.get(Gegl.Rectangle.new(-x, -y, width, height), 1.0, FORMATS[dtype], Gegl.AbyssPolicy.NONE)
    return bytes(data)


def read_visible(image: Gimp.Image, dtype: str) -> bytes:
    """The image as GIMP shows it (every visible layer merged) over the whole canvas, as RGBA
    bytes of `dtype`: merged in a throwaway copy, so the image itself is not touched."""
    copy = image.duplicate()
    try:
        copy.undo_disable()
        merged = copy.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
        return read_on_canvas(copy, merged, dtype)
    finally:
        copy.delete()


def read_channel(image: Gimp.Image, channel: Gimp.Channel) -> bytes:
    """A channel (a saved selection, or the selection itself) as one byte per canvas pixel."""
    width, height = canvas_size(image)
    buffer = channel.get_buffer()
    return bytes(buffer.get(Gegl.Rectangle.new(0, 0, width, height), 1.0, MASK_FORMAT, Gegl.AbyssPolicy.NONE))


def selection(image: Gimp.Image) -> Gimp.Selection:
    return image.get_selection()


def add_layer_above(image: Gimp.Image, anchor: Gimp.Drawable, name: str, data: bytes, dtype: str) -> Gimp.Layer:
    """A new canvas-sized layer right above `anchor`, holding `data` (RGBA bytes of dtype)."""
    width, height = canvas_size(image)
    kind = Gimp.ImageType.RGBA_IMAGE if base_type(image) == "RGB" else Gimp.ImageType.GRAYA_IMAGE
    layer = Gimp.Layer.new(image, name, width, height, kind, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, anchor.get_parent(), image.get_item_position(anchor))
    buffer = layer.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, width, height), FORMATS[dtype], data)
    buffer.flush()
    layer.update(0, 0, width, height)
    return layer


def siblings_top_first(image: Gimp.Image, layer: Gimp.Layer) -> list[Gimp.Layer]:
    """The layers beside `layer` in its group (or at the top level), top of the stack first."""
    parent = layer.get_parent()
    return list(parent.get_children()) if parent is not None else list(image.get_layers())


def parent_group(layer: Gimp.Layer) -> Gimp.Layer | None:
    return layer.get_parent()


def layer_kind(layer: Gimp.Item) -> str:
    """"layer" for a layer of pixels (text layers too: their pixels are read as they show),
    else what it is, in words: "group layer", "vector layer", "link layer", "channel"..."""
    if layer.is_group_layer():
        return "group layer"
    if not layer.is_layer():
        return "channel" if layer.is_channel() else "item"
    for kind in ("VectorLayer", "LinkLayer"):  # GIMP 3.2's, which 3.0 does not know
        if hasattr(Gimp, kind) and isinstance(layer, getattr(Gimp, kind)):
            return kind.replace("Layer", " layer").lower()
    return "layer"


def layer_look(layer: Gimp.Layer) -> dict:
    """How a layer shows: what a mirrored copy must keep."""
    return {"opacity": layer.get_opacity(), "mode": layer.get_mode(), "visible": layer.get_visible(),
            "blend_space": layer.get_blend_space(), "composite_mode": layer.get_composite_mode(),
            "composite_space": layer.get_composite_space()}


def _give_look(layer: Gimp.Layer, look: dict) -> None:
    layer.set_opacity(look["opacity"])
    layer.set_mode(look["mode"])
    layer.set_visible(look["visible"])
    layer.set_blend_space(look["blend_space"])
    layer.set_composite_mode(look["composite_mode"])
    layer.set_composite_space(look["composite_space"])


def add_group_above(image: Gimp.Image, anchor: Gimp.Layer, name: str, look: dict | None,
                    layers: list[tuple[str, bytes, str, dict]]) -> Gimp.Layer:
    """A new layer group right above `anchor` holding new canvas-sized layers (name, RGBA bytes
    of dtype, look), top of the stack first. Call inside an undo group."""
    width, height = canvas_size(image)
    group = Gimp.GroupLayer.new(image, name)
    image.insert_layer(group, anchor.get_parent(), image.get_item_position(anchor))
    if look is not None:
        _give_look(group, look)
    kind = Gimp.ImageType.RGBA_IMAGE if base_type(image) == "RGB" else Gimp.ImageType.GRAYA_IMAGE
    for position, (layer_name, data, dtype, layer_look_) in enumerate(layers):
        layer = Gimp.Layer.new(image, layer_name, width, height, kind, 100.0, Gimp.LayerMode.NORMAL)
        image.insert_layer(layer, group, position)
        buffer = layer.get_buffer()
        buffer.set(Gegl.Rectangle.new(0, 0, width, height), FORMATS[dtype], data)
        buffer.flush()
        _give_look(layer, layer_look_)
        layer.update(0, 0, width, height)
    return group


def undo_group(image: Gimp.Image, start: bool) -> None:
    if start:
        image.undo_group_start()
    else:
        image.undo_group_end()


def progress_start(text: str) -> None:
    Gimp.progress_init(text)


def progress_update(fraction: float) -> None:
    Gimp.progress_update(max(0.0, min(1.0, fraction)))


def progress_end() -> None:
    Gimp.progress_end()


def flush_displays() -> None:
    Gimp.displays_flush()
