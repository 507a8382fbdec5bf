"""What the Krita actions do, as plain Python over `krita_host` and the engine client: read
the exemplar and the edit, ask the engine, add the result as a new layer. Tests drive these
functions in real Krita without any window."""

from . import krita_host as host
from .client import EngineError, Image, mask_buffer


class PluginError(Exception):
    """A problem the artist can fix; the message says how. Nothing was changed."""


def exemplar_image(document, node):
    """The node as an engine Image, and its channel order; refuses what the engine cannot take."""
    if host.node_type(node) != "paintlayer":
        raise PluginError("Select a paint layer as the exemplar (the active layer is a "
                          f"{host.node_type(node).replace('layer', ' layer')}).")
    model, depth = host.colour_space(node)
    if model != "RGBA":
        raise PluginError(f"This layer is in {model} colour. Convert the image to RGB/Alpha "
                          "(Image > Convert Image Color Space...) and try again.")
    if depth not in host.LAYOUTS:
        raise PluginError(f"Layers of depth {depth} are not supported; convert to 8 or 16-bit integer or 16/32-bit float.")
    dtype, order = host.LAYOUTS[depth]
    width, height = host.document_size(document)
    return Image(host.read_pixels(document, node), width, height, 4, dtype), order


def _selected(mask):
    return mask is not None and any(mask)


def manipulate_with_selections(client, document, node, progress=None, model=None, on_id=None):
    """Move/reshape what the exemplar's local selection mask selects into the global selection.
    Returns the new layer."""
    image, order = exemplar_image(document, node)
    masks = host.selection_masks(node)
    if not masks:
        raise PluginError("Mark the region to move with a local selection mask on the exemplar layer "
                          "(Layer > New > Local Selection), then select where it should go.")
    source = host.read_mask(document, masks[0])
    if not _selected(source):
        raise PluginError("The exemplar's selection mask is empty: paint the region to move into it.")
    target = host.read_global_selection(document)
    if not _selected(target):
        raise PluginError("Select where the region should go (the current selection is empty).")
    width, height = image.width, image.height
    try:
        result = client.manipulate(image, source_mask=mask_buffer(source, width, height),
                                   target_mask=mask_buffer(target, width, height), channel_order=order,
                                   model=model, progress=progress, on_id=on_id)
    except EngineError as error:
        raise PluginError(error.message) from error
    return host.add_layer_above(document, node, f"Manipulated {host.node_name(node)}", bytes(result.data))


def segment_layer(client, document, node, max_regions=None, progress=None):
    """A colour region map of `node` as a new layer above it, for the artist to duplicate and repaint."""
    image, order = exemplar_image(document, node)
    try:
        _, colours = client.segment(image, max_regions=max_regions, channel_order=order, progress=progress)
    except EngineError as error:
        raise PluginError(error.message) from error
    return host.add_layer_above(document, node, f"Regions of {host.node_name(node)}", bytes(colours.data))
