"""What the Krita actions do, as plain Python over `krita_host` and the engine client, in three
steps: read the document into a request (UI thread: Krita may only be called from there), ask the
engine (any thread), add the result as a new layer (UI thread). Tests drive these functions in
real Krita without any window."""

from dataclasses import dataclass, field

from . import krita_host as host
from .link.client import Image, PluginError, job_errors, mask_buffer

PREVIEW_SIDE = 384


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


@dataclass
class Edit:
    """What the dialog chose. With region maps, `exemplar_map` and `target_map` are paint layers
    holding flat colours; otherwise `source` is a selection mask (the exemplar's own local one
    by default) and the target is the current selection."""

    exemplar: object
    source: object = None
    exemplar_map: object = None
    target_map: object = None
    model: str | None = None
    # which layers get the edit: the painting layer alone ("layer"), every layer of its group
    # ("group") or the layers selected in the Layers docker ("selected", listed in `selected`)
    apply_to: str = "layer"
    selected: list = field(default_factory=list)
    # solve on the visible image (every layer as Krita shows them) instead of the painting layer
    solve_on_visible: bool = False

    @property
    def uses_maps(self):
        return self.exemplar_map is not None or self.target_map is not None


def default_edit(document, node):
    """The dialog's defaults: the active layer and its topmost local selection mask."""
    masks = host.selection_masks(node) if node is not None else []
    return Edit(exemplar=node, source=masks[0] if masks else None)


@dataclass
class Request:
    """Everything the engine needs, read out of the document."""

    image: Image
    order: str
    buffers: dict
    model: str | None = None


def request_for(document, edit):
    """Read the exemplar and the edit out of the document, checking everything the artist can
    fix. UI thread."""
    if edit.exemplar is None:
        raise PluginError("Choose the exemplar layer.")
    image, order = exemplar_image(document, edit.exemplar)
    if edit.solve_on_visible:  # the same layout as the layer, read from what Krita shows
        image = Image(host.read_visible(document), image.width, image.height, 4, image.dtype)
    width, height = image.width, image.height
    if edit.uses_maps:
        if edit.exemplar_map is None or edit.target_map is None:
            raise PluginError("Choose both region-map layers: the exemplar's map and the edited one.")
        maps = {}
        for key, node in (("exemplar_map", edit.exemplar_map), ("target_map", edit.target_map)):
            picture, map_order = exemplar_image(document, node)
            if map_order != order or picture.dtype != image.dtype:
                raise PluginError("The region-map layers must be in the document's colour space.")
            maps[key] = picture
        return Request(image, order, maps, edit.model)
    if edit.source is None:
        raise PluginError("Mark the region to move with a local selection mask on the exemplar layer "
                          "(Layer > New > Local Selection), then select where it should go.")
    source = host.read_mask(document, edit.source)
    if not _selected(source):
        raise PluginError("The selection mask of the region to move is empty: paint the region into it.")
    target = host.read_global_selection(document)
    if not _selected(target):
        raise PluginError("Select where the region should go (the current selection is empty).")
    return Request(image, order, {"source_mask": mask_buffer(source, width, height),
                                  "target_mask": mask_buffer(target, width, height)}, edit.model)


def compute(client, request, progress=None, on_id=None):
    """The full-resolution result as an Image in the document's layout. Any thread."""
    with job_errors():
        return client.manipulate(request.image, channel_order=request.order, model=request.model,
                                 progress=progress, on_id=on_id, **request.buffers)


# The choices of the dialog's "Apply to", in its order.
APPLY_TO = (("layer", "This layer"), ("group", "All layers in its group"), ("selected", "The selected layers"))


def layers_to_edit(document, edit):
    """The layers the edit goes to, top of the stack first (see Edit.apply_to). Layers whose
    pixels cannot be replayed (groups, vector, filter, fill, clone and file layers) are refused
    by name, before any work. UI thread."""
    if edit.apply_to == "layer":
        return [edit.exemplar]
    if edit.apply_to == "group":
        nodes = host.children_top_first(host.parent_node(edit.exemplar))
    else:
        nodes = list(edit.selected)
        if not nodes:
            raise PluginError("No layers are selected: select them in the Layers docker, or apply to this layer only.")
    refused = [f"'{host.node_name(n)}' ({host.node_type(n).replace('layer', ' layer')})"
               for n in nodes if host.node_type(n) != "paintlayer"]
    if refused:
        raise PluginError("These layers cannot be moved with the others: " + ", ".join(refused) + ". Convert them "
                          "to paint layers (Layer > Convert > to Paint Layer), or choose the layers to apply to.")
    return nodes


def layer_images(document, nodes, order):
    """Each node's pixels as an engine Image, all in the painting's layout. UI thread."""
    images = []
    for node in nodes:
        image, layer_order = exemplar_image(document, node)
        if layer_order != order:
            raise PluginError(f"The layer '{host.node_name(node)}' is in another colour space: convert it to the document's.")
        images.append(image)
    return images


def compute_layers(client, request, images, progress=None, on_id=None):
    """Solve the edit once on the painting, then replay it on every layer: results in the same
    order as `images`, in the document's layout, every layer moved alike. Any thread."""
    with job_errors():
        return client.manipulate_layers(request.image, images, channel_order=request.order, model=request.model,
                                        progress=progress, on_id=on_id, **request.buffers)


def insert_mirrored(document, edit, nodes, results):
    """The results as a new group "Manipulated <group>" that mirrors the layers (names, blending
    modes, opacity, visibility), just above the group (or above the topmost layer when the layers
    are not a whole group); one undo step, the originals untouched."""
    parent = host.parent_node(nodes[0])
    whole_group = edit.apply_to == "group" and not host.is_root(document, parent)
    name = f"Manipulated {host.node_name(parent)}" if whole_group else "Manipulated layers"
    layers = [(host.node_name(n), bytes(r.data), host.layer_look(n)) for n, r in zip(nodes, results)]
    return host.add_group_above(document, parent if whole_group else nodes[0], name,
                                host.layer_look(parent) if whole_group else None, layers)


def preview(client, request, max_side=PREVIEW_SIDE):
    """A small 8-bit RGBA result for the dialog, the painting at that size, and the box of the
    edit in them (a link.client.Preview). Any thread."""
    with job_errors():
        return client.compare_preview(request.image, max_side=max_side, for_display=True, channel_order=request.order,
                                      model=request.model, **request.buffers)



def insert_result(document, edit, result):
    """The result as a new layer just above the exemplar (one undo step)."""
    name = f"Manipulated {host.node_name(edit.exemplar)}"
    return host.add_layer_above(document, edit.exemplar, name, bytes(result.data))


def manipulate_with_selections(client, document, node, progress=None, model=None, on_id=None):
    """The defaults, start to end: the node's own selection mask into the current selection."""
    edit = default_edit(document, node)
    edit.model = model
    return insert_result(document, edit, compute(client, request_for(document, edit), progress, on_id))


def segment_colours(client, image, order, progress=None, max_regions=None):
    """A colour region map of `image` (from `exemplar_image`), in its layout. Any thread."""
    with job_errors():
        return client.segment(image, max_regions=max_regions, channel_order=order, progress=progress)[1]


def default_maps(names: list[str]) -> tuple[int, int] | None:
    """The maps-mode defaults among layer names (top of the stack first): the topmost "Regions
    of ..." layer (a Segment result) as the painting's map and the layer right above it (its
    repainted copy) as the edited one; else the two top layers. None with fewer than two."""
    if len(names) < 2:
        return None
    # Krita names a duplicate "<name> copy": the copy is the edited map, not a Segment result
    segmented = next((i for i, name in enumerate(names) if name.startswith("Regions of ") and " copy" not in name), None)
    if segmented is None:
        return 1, 0
    return segmented, (segmented - 1 if segmented > 0 else segmented + 1)


def insert_segmentation(document, node, colours):
    """The map as a new layer above `node`, for the artist to duplicate and repaint."""
    return host.add_layer_above(document, node, f"Regions of {host.node_name(node)}", bytes(colours.data))


def segment_layer(client, document, node, max_regions=None, progress=None):
    """Segment, then insert: the whole action without a window."""
    image, order = exemplar_image(document, node)
    return insert_segmentation(document, node, segment_colours(client, image, order, progress, max_regions))
