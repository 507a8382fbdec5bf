"""What the GIMP procedures do, as plain Python over `gimp_host` and the engine client: read the
image into a request, ask the engine, add the result as a new layer. Nothing is written to the
image until the engine has answered."""

import json
from dataclasses import dataclass
from pathlib import Path

import gimp_host as host
from link import engine_setup
from link.client import BASELINE_MODEL, Client, Image, PluginError, job_errors, mask_buffer, model_choices

CONFIG = Path(__file__).resolve().parent / "engine.json"


def engine_client():
    """A worker for this plug-in call (GIMP runs each call in a fresh process)."""
    try:
        settings = json.loads(CONFIG.read_text())
    except (OSError, ValueError):
        raise PluginError(NO_ENGINE) from None
    return Client(settings["command"])


NO_ENGINE = ("The SIM-Net engine is not installed: run Filters > SIM-Net > Install SIM-Net engine... (or "
             "`simnet install-plugin gimp` in the environment where SIM-Net is installed).")
PLUGIN = Path(__file__).resolve().parent


def install_engine(progress=None):
    """Install the engine this plug-in carries (link.engine_setup); returns the worker command."""
    try:
        return engine_setup.install_engine(PLUGIN, progress)
    except engine_setup.SetupError as problem:
        raise PluginError(str(problem)) from None


def model_options() -> list[tuple[str, str]]:
    """The dialog's model choice as (nick, label): the engine's default and the fast baseline.
    The nicks never change (GIMP keeps a procedure's declared choices between runs, and a
    reinstall may change the models); the label says what the default is. Any other model is
    given as a folder."""
    try:
        settings = json.loads(CONFIG.read_text())
        default = model_choices(list(settings["models"]), settings.get("default_model"))[0][1]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        default = "The engine's default"
    return [("default", default), (BASELINE_MODEL, "Fast baseline")]


def solved_on_visible(image, request):
    """The request with the visible image (every visible layer merged) as what the edit is
    solved on, instead of the painting layer."""
    shown = host.read_visible(image, request.image.dtype)
    request.image = Image(shown, request.image.width, request.image.height, 4, request.image.dtype)
    return request


def exemplar_image(image, drawable):
    """The drawable over the canvas as an engine Image; refuses what the engine cannot take."""
    if drawable is None or not host.is_layer(drawable):
        raise PluginError("Select a layer as the exemplar (the active item is not a layer).")
    if host.base_type(image) == "INDEXED":
        raise PluginError("Indexed images are not supported: convert with Image > Mode > RGB and try again.")
    dtype = host.sample_type(image)
    width, height = host.canvas_size(image)
    return Image(host.read_on_canvas(image, drawable, dtype), width, height, 4, dtype)


@dataclass
class Request:
    image: Image
    buffers: dict
    model: str | None = None


def _selected(data):
    return data.count(0) != len(data)


def request_from_selection(image, drawable, source_channel, model=None):
    """The source region is a saved selection (a channel); the target is the current selection."""
    exemplar = exemplar_image(image, drawable)
    width, height = exemplar.width, exemplar.height
    if source_channel is None:
        raise PluginError("Choose the region to move: save a selection of it as a channel "
                          "(Select > Save to Channel), then select where it should go.")
    source = host.read_channel(image, source_channel)
    if not _selected(source):
        raise PluginError(f"The channel '{host.item_name(source_channel)}' is empty: it should hold the region to move.")
    target = host.read_channel(image, host.selection(image))
    if not _selected(target):
        raise PluginError("Select where the region should go (the current selection is empty).")
    if target.count(255) == len(target):
        raise PluginError("The whole image is selected: select only where the region should go.")
    return Request(exemplar, {"source_mask": mask_buffer(source, width, height),
                              "target_mask": mask_buffer(target, width, height)}, model or None)


def request_from_maps(image, drawable, exemplar_map, target_map, model=None):
    """Region-map mode: two layers of flat colours, the exemplar's map and the edited one."""
    exemplar = exemplar_image(image, drawable)
    if exemplar_map is None or target_map is None:
        raise PluginError("Choose both region-map layers: the exemplar's map and the edited one.")
    maps = {"exemplar_map": exemplar_image(image, exemplar_map), "target_map": exemplar_image(image, target_map)}
    return Request(exemplar, maps, model or None)


# The choices of "Apply to" (nick, label), in their order.
APPLY_TO = (("layer", "This layer"), ("group", "All layers in its group"), ("selected", "The selected layers"))


def layers_to_edit(image, drawable, apply_to, selected):
    """The layers the edit goes to, top of the stack first: the painting layer alone ("layer"),
    every layer of its group ("group") or the selected layers ("selected"). Layers whose pixels
    cannot be replayed (groups, GIMP 3.2's vector and link layers) are refused by name."""
    if apply_to == "layer":
        return [drawable]
    layers = host.siblings_top_first(image, drawable) if apply_to == "group" else list(selected)
    refused = [f"'{host.item_name(layer)}' ({host.layer_kind(layer)})" for layer in layers if host.layer_kind(layer) != "layer"]
    if refused:
        raise PluginError("These layers cannot be moved with the others: " + ", ".join(refused) + ". Rasterize them "
                          "(Layer > Rasterize) or merge the group (Layer > Merge Layer Group), or choose the layers to apply to.")
    return layers


def layer_images(image, layers):
    """Each layer over the canvas as an engine Image, in the image's precision."""
    return [exemplar_image(image, layer) for layer in layers]


def compute_layers(client, request, images, progress=None):
    """Solve the edit once on the painting, then replay it on every layer (results in the order
    of `images`): every layer moved alike."""
    with job_errors():
        return client.manipulate_layers(request.image, images, model=request.model, progress=progress, **request.buffers)


def insert_mirrored(image, drawable, apply_to, layers, results):
    """The results as a new layer group "Manipulated <group>" that mirrors the layers (names,
    modes, opacity, visibility), just above the group (or above the topmost layer when they are
    not a whole group), in one undo group; the originals untouched."""
    group = host.parent_group(drawable) if apply_to == "group" else None
    name = f"Manipulated {host.item_name(group)}" if group is not None else "Manipulated layers"
    made = [(host.item_name(layer), bytes(result.data), result.dtype, host.layer_look(layer))
            for layer, result in zip(layers, results)]
    host.undo_group(image, True)
    try:
        return host.add_group_above(image, group if group is not None else layers[0], name,
                                    host.layer_look(group) if group is not None else None, made)
    finally:
        host.undo_group(image, False)


def preview(client, request, max_side):
    """A small 8-bit RGBA result, the painting at that size, and the box of the edit in them (a
    link.client.Preview), for the dialog."""
    with job_errors():
        return client.compare_preview(request.image, max_side=max_side, for_display=True, model=request.model,
                                      **request.buffers)


def compute(client, request, progress=None):
    with job_errors():
        return client.manipulate(request.image, model=request.model, progress=progress, **request.buffers)


def insert_result(image, drawable, result):
    """The result as a new layer above the exemplar, in one undo step."""
    host.undo_group(image, True)
    try:
        return host.add_layer_above(image, drawable, f"Manipulated {host.item_name(drawable)}", bytes(result.data), result.dtype)
    finally:
        host.undo_group(image, False)


def segment_layer(client, image, drawable, max_regions=None, progress=None):
    exemplar = exemplar_image(image, drawable)
    with job_errors():
        colours = client.segment(exemplar, max_regions=max_regions, progress=progress)[1]
    host.undo_group(image, True)
    try:
        return host.add_layer_above(image, drawable, f"Regions of {host.item_name(drawable)}", bytes(colours.data), colours.dtype)
    finally:
        host.undo_group(image, False)
