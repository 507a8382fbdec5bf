"""Every call this plug-in makes into Krita, and nothing else.

Pixel layouts (Node.pixelData): RGBA U8 and U16 are B, G, R, A; F16 and F32 are R, G, B, A;
straight alpha. Selections and selection masks are one byte per pixel, 0..255, soft.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from krita import Krita

if TYPE_CHECKING:  # Krita's classes, for the annotations only
    from krita import Document, Node

# Krita depth -> (protocol dtype, channel order)
LAYOUTS = {"U8": ("uint8", "bgra"), "U16": ("uint16", "bgra"), "F16": ("float16", "rgba"), "F32": ("float32", "rgba")}


def active_document_and_node() -> tuple[Document | None, Node | None]:
    document = Krita.instance().activeDocument()
    return document, (document.activeNode() if document is not None else None)


def document_size(document: Document) -> tuple[int, int]:
    return document.width(), document.height()


def colour_space(node: Node) -> tuple[str, str]:
    return node.colorModel(), node.colorDepth()


def node_name(node: Node) -> str:
    return node.name()


def node_type(node: Node) -> str:
    return node.type()


def read_pixels(document: Document, node: Node) -> bytes:
    """The node's pixels over the whole canvas, in Krita's own layout."""
    width, height = document_size(document)
    return bytes(node.pixelData(0, 0, width, height))


def read_visible(document: Document) -> bytes:
    """The image as Krita shows it (every visible layer merged), over the whole canvas, in the
    document's own layout."""
    width, height = document_size(document)
    document.refreshProjection()
    return bytes(document.pixelData(0, 0, width, height))


def selection_masks(node: Node) -> list[Node]:
    """Local selection masks on `node`, topmost first."""
    return [child for child in reversed(node.childNodes()) if child.type() == "selectionmask"]


def read_mask(document: Document, mask_node: Node) -> bytes:
    width, height = document_size(document)
    return bytes(mask_node.pixelData(0, 0, width, height))


def read_global_selection(document: Document) -> bytes | None:
    """The document's global selection over the whole canvas, or None when nothing is selected."""
    selection = document.selection()
    if selection is None or selection.width() == 0 or selection.height() == 0:
        return None
    width, height = document_size(document)
    return bytes(selection.pixelData(0, 0, width, height))


def add_layer_above(document: Document, node: Node, name: str, data: bytes) -> Node:
    """A new paint layer with `data` (the canvas in the document's layout), inserted just above
    `node` in one undoable step: filled first, so no pixel of an existing layer is touched."""
    width, height = document_size(document)
    layer = document.createNode(name, "paintlayer")
    layer.setPixelData(data, 0, 0, width, height)
    node.parentNode().addChildNode(layer, node)
    document.refreshProjection()
    return layer


def parent_node(node: Node) -> Node:
    return node.parentNode()


def is_root(document: Document, node: Node) -> bool:
    return node == document.rootNode()


def children_top_first(node: Node) -> list[Node]:
    """The node's children that are layers (not masks), top of the stack first."""
    return [child for child in reversed(node.childNodes()) if not child.type().endswith("mask")]


def selected_layers() -> list[Node]:
    """The layers selected in the active window's Layers docker (none without a window)."""
    window = Krita.instance().activeWindow()
    view = window.activeView() if window is not None else None
    return list(view.selectedNodes()) if view is not None else []


def layer_look(node: Node) -> dict:
    """How a layer shows: what a mirrored copy must keep."""
    look = {"opacity": node.opacity(), "blending": node.blendingMode(), "visible": node.visible()}
    if node.type() == "grouplayer":
        look["pass_through"] = node.passThroughMode()
    return look


def _give_look(node: Node, look: dict) -> None:
    node.setOpacity(look["opacity"])
    node.setBlendingMode(look["blending"])
    node.setVisible(look["visible"])
    if "pass_through" in look:
        node.setPassThroughMode(look["pass_through"])


def add_group_above(document: Document, node: Node, name: str, look: dict | None,
                    layers: list[tuple[str, bytes, dict]]) -> Node:
    """A new group of new paint layers (name, data in the document's layout, look), top of the
    stack first, inserted just above `node` once it is complete: one undoable step, and no pixel
    of an existing layer is touched."""
    width, height = document_size(document)
    group = document.createGroupLayer(name)
    if look is not None:
        _give_look(group, look)
    below = None
    for layer_name, data, layer_look_ in reversed(layers):  # bottom first, each above the last
        layer = document.createNode(layer_name, "paintlayer")
        layer.setPixelData(data, 0, 0, width, height)
        _give_look(layer, layer_look_)
        group.addChildNode(layer, below)
        below = layer
    node.parentNode().addChildNode(group, node)
    document.refreshProjection()
    return group


def _walk(node: Node) -> Iterator[Node]:
    for child in node.childNodes():
        yield child
        yield from _walk(child)


def paint_layers(document: Document) -> list[Node]:
    """Every paint layer of the document, top of the stack first."""
    return [n for n in reversed(list(_walk(document.rootNode()))) if n.type() == "paintlayer"]


def all_selection_masks(document: Document) -> list[Node]:
    """Every selection mask on a layer (local selections, saved selections), top first; the
    phantom global "Selection Mask" at the top level is not one."""
    return [n for n in reversed(list(_walk(document.rootNode())))
            if n.type() == "selectionmask" and n.parentNode() is not None and n.parentNode().parentNode() is not None]
