# Runs inside GIMP 3 (gimp-console-3.0 --batch-interpreter=python-fu-eval): builds images of each
# precision, calls the SIM-Net procedures non-interactively, and writes what happened to OUT
# (raw pixels and a JSON log) for tests/test_gimp.py to check against the engine run directly.
import json
import os

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp

OUT = os.environ["SIMNET_GIMP_OUT"]
W, H = 96, 64
LAYER_W, LAYER_H, LAYER_X, LAYER_Y = 80, 56, 8, 4
PRECISIONS = {
    "u8": Gimp.Precision.U8_NON_LINEAR,
    "u16": Gimp.Precision.U16_NON_LINEAR,
    "float": Gimp.Precision.FLOAT_NON_LINEAR,
}
log = {}


def texture(width, height):
    """Deterministic RGBA u8 bytes: smooth colour gradients, opaque."""
    data = bytearray()
    for y in range(height):
        for x in range(width):
            data += bytes(((x * 5 + y * 3) % 256, (x * 2 + 90) % 256, (y * 4 + 30) % 256, 255))
    return bytes(data)


def read(drawable, fmt="R'G'B'A float"):
    _, x, y = drawable.get_offsets()
    buffer = drawable.get_buffer()
    return bytes(buffer.get(Gegl.Rectangle.new(-x, -y, W, H), 1.0, fmt, Gegl.AbyssPolicy.NONE))


def make_image(precision, with_alpha=True):
    image = Gimp.Image.new_with_precision(W, H, Gimp.ImageBaseType.RGB, PRECISIONS[precision])
    background = Gimp.Layer.new(image, "Background", W, H, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(background, None, 0)
    Gimp.context_set_foreground(_colour(0.2, 0.3, 0.4))
    background.fill(Gimp.FillType.FOREGROUND)
    kind = Gimp.ImageType.RGBA_IMAGE if with_alpha else Gimp.ImageType.RGB_IMAGE
    layer = Gimp.Layer.new(image, "Exemplar", LAYER_W, LAYER_H, kind, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, None, 0)
    layer.set_offsets(LAYER_X, LAYER_Y)
    buffer = layer.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, LAYER_W, LAYER_H), "R'G'B'A u8", texture(LAYER_W, LAYER_H))
    buffer.flush()
    return image, layer


def _colour(r, g, b):
    gi.require_version("Gegl", "0.4")
    colour = Gegl.Color.new("black")
    colour.set_rgba(r, g, b, 1.0)
    return colour


def select(image, x, y, w, h, feather=0.0):
    Gimp.context_set_feather(feather > 0)
    Gimp.context_set_feather_radius(feather, feather)
    image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)


def call(name, image, drawable, **properties):
    procedure = Gimp.get_pdb().lookup_procedure(name)
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", drawable if isinstance(drawable, list) else [drawable])
    for key, value in properties.items():
        config.set_property(key, value)
    result = procedure.run(config)
    status = result.index(0)
    message = None
    if status != Gimp.PDBStatusType.SUCCESS:
        error = result.index(1)
        message = error.message if hasattr(error, "message") else str(error)
    return status.value_nick, message


def layer_names(image):
    return [layer.get_name() for layer in image.get_layers()]


def manipulate_case(name, precision, with_alpha=True, feather=0.0):
    image, layer = make_image(precision, with_alpha)
    select(image, 16, 12, 24, 20)
    channel = Gimp.Selection.save(image)
    select(image, 50, 24, 26, 22, feather)
    before = read(layer)
    status, message = call("plug-in-simnet-manipulate", image, layer, **{"source-channel": channel})
    entry = {"status": status, "message": message, "layers": layer_names(image),
             "unchanged": read(layer) == before}
    if status == "success":
        result = image.get_layers()[0]
        _, x, y = result.get_offsets()
        entry.update(offsets=[x, y], size=[result.get_width(), result.get_height()])
        with open(os.path.join(OUT, name + ".result.raw"), "wb") as f:
            f.write(read(result))
        with open(os.path.join(OUT, name + ".exemplar.raw"), "wb") as f:
            f.write(before)
        for mask_name, item in (("source", channel), ("target", image.get_selection())):
            with open(os.path.join(OUT, f"{name}.{mask_name}.raw"), "wb") as f:
                f.write(bytes(item.get_buffer().get(Gegl.Rectangle.new(0, 0, W, H), 1.0, "Y u8", Gegl.AbyssPolicy.NONE)))
        undo_enabled = image.undo_is_enabled()
        entry["undo_enabled"] = undo_enabled
    log[name] = entry
    image.delete()


def error_cases():
    image, layer = make_image("u8")
    select(image, 16, 12, 24, 20)
    channel = Gimp.Selection.save(image)
    Gimp.Selection.none(image)
    log["no_target"] = dict(zip(("status", "message"), call("plug-in-simnet-manipulate", image, layer, **{"source-channel": channel})))
    log["no_target"]["layers"] = layer_names(image)
    select(image, 50, 24, 26, 22)
    log["no_channel"] = dict(zip(("status", "message"), call("plug-in-simnet-manipulate", image, layer)))
    Gimp.Selection.all(image)
    log["all_selected"] = dict(zip(("status", "message"), call("plug-in-simnet-manipulate", image, layer, **{"source-channel": channel})))
    image.delete()
    image, layer = make_image("u8")
    image.convert_indexed(Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE, 16, False, False, "")
    log["indexed"] = dict(zip(("status", "message"), call("plug-in-simnet-manipulate", image, image.get_layers()[0])))
    image.delete()


def segment_case():
    image, layer = make_image("u8")
    status, message = call("plug-in-simnet-segment", image, layer)
    log["segment"] = {"status": status, "message": message, "layers": layer_names(image)}
    image.delete()


def maps_case():
    image, layer = make_image("u8")
    status, _ = call("plug-in-simnet-segment", image, layer)
    exemplar_map = image.get_layers()[0]
    target_map = exemplar_map.copy()
    image.insert_layer(target_map, None, 0)
    target_map.set_name("Edited regions")
    # the edit: one region's colour painted over a rectangle (grows that region)
    Gimp.context_set_foreground(target_map.get_pixel(LAYER_X + 2, LAYER_Y + 2))
    select(image, 40, 20, 30, 24)
    target_map.edit_fill(Gimp.FillType.FOREGROUND)
    Gimp.Selection.none(image)
    status, message = call("plug-in-simnet-manipulate", image, layer,
                           **{"mode": "maps", "exemplar-map": exemplar_map, "target-map": target_map})
    log["maps"] = {"status": status, "message": message, "layers": layer_names(image)}
    image.delete()


def group_case():
    """A group of three layers (line art, colour, shadow) of distinct looks; the colour layer is
    the painting; the whole group, then two selected layers, get the edit."""
    image = Gimp.Image.new_with_precision(W, H, Gimp.ImageBaseType.RGB, PRECISIONS["u8"])
    paper = Gimp.Layer.new(image, "Paper", W, H, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(paper, None, 0)
    Gimp.context_set_foreground(_colour(0.9, 0.9, 0.85))
    paper.fill(Gimp.FillType.FOREGROUND)
    group = Gimp.GroupLayer.new(image, "Figure")
    image.insert_layer(group, None, 0)
    group.set_opacity(90.0)
    looks = {"Line art": (100.0, Gimp.LayerMode.NORMAL, False), "Colour": (100.0, Gimp.LayerMode.NORMAL, True),
             "Shadow": (50.0, Gimp.LayerMode.MULTIPLY, True)}
    layers = {}
    for position, name in enumerate(("Line art", "Colour", "Shadow")):  # top first
        layer = Gimp.Layer.new(image, name, W, H, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
        image.insert_layer(layer, group, position)
        opacity, mode, visible = looks[name]
        layer.set_opacity(opacity)
        layer.set_mode(mode)
        layer.set_visible(visible)
        layers[name] = layer
    layers["Colour"].get_buffer().set(Gegl.Rectangle.new(0, 0, W, H), "R'G'B'A u8", texture(W, H))
    ink = bytearray(W * H * 4)
    for x in range(18, 38):
        ink[(14 * W + x) * 4 : (14 * W + x) * 4 + 4] = bytes((0, 0, 0, 255))  # a line inside the figure
    layers["Line art"].get_buffer().set(Gegl.Rectangle.new(0, 0, W, H), "R'G'B'A u8", bytes(ink))
    shade = bytearray(W * H * 4)
    for y in range(12, 32):
        for x in range(16, 40):
            shade[(y * W + x) * 4 : (y * W + x) * 4 + 4] = bytes((60, 30, 90, 128))
    layers["Shadow"].get_buffer().set(Gegl.Rectangle.new(0, 0, W, H), "R'G'B'A u8", bytes(shade))
    for layer in layers.values():
        layer.get_buffer().flush()
    select(image, 16, 12, 24, 20)
    channel = Gimp.Selection.save(image)
    select(image, 50, 24, 24, 20)
    before = {name: read(layer, "R'G'B'A u8") for name, layer in layers.items()}
    with open(os.path.join(OUT, "group.source.raw"), "wb") as f:
        f.write(bytes(channel.get_buffer().get(Gegl.Rectangle.new(0, 0, W, H), 1.0, "Y u8", Gegl.AbyssPolicy.NONE)))
    with open(os.path.join(OUT, "group.target.raw"), "wb") as f:
        f.write(bytes(image.get_selection().get_buffer().get(Gegl.Rectangle.new(0, 0, W, H), 1.0, "Y u8", Gegl.AbyssPolicy.NONE)))
    for name, data in before.items():
        with open(os.path.join(OUT, f"group.{name}.raw"), "wb") as f:
            f.write(data)
    entry = {}
    entry["status"], entry["message"] = call("plug-in-simnet-manipulate", image, layers["Colour"],
                                             **{"source-channel": channel, "apply-to": "group", "model": "moments"})
    entry["top"] = layer_names(image)
    made = image.get_layers()[0]
    entry["group"] = [made.get_name(), round(made.get_opacity()), made.is_group_layer()]
    entry["children"] = [[c.get_name(), round(c.get_opacity()), c.get_mode().value_nick, c.get_visible()] for c in made.get_children()]
    for child in made.get_children():
        with open(os.path.join(OUT, f"group.{child.get_name()}.result.raw"), "wb") as f:
            f.write(read(child, "R'G'B'A u8"))
    entry["unchanged"] = all(read(layer, "R'G'B'A u8") == before[name] for name, layer in layers.items())
    status, message = call("plug-in-simnet-manipulate", image, [layers["Colour"], layers["Line art"]],
                           **{"source-channel": channel, "apply-to": "selected", "model": "moments"})
    inside = group.get_children()
    entry["selected"] = {"status": status, "message": message, "in_group": [c.get_name() for c in inside],
                         "made": [c.get_name() for g in inside if g.get_name() == "Manipulated layers" for c in g.get_children()]}
    status, message = call("plug-in-simnet-manipulate", image, [layers["Colour"], layers["Line art"]],
                           **{"source-channel": channel, "apply-to": "group", "model": "moments"})
    entry["several"] = message
    # solved on the visible image, given to the colour layer alone
    with open(os.path.join(OUT, "group.visible.raw"), "wb") as f:
        copy = image.duplicate()
        f.write(read(copy.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE), "R'G'B'A u8"))
        copy.delete()
    status, message = call("plug-in-simnet-manipulate", image, layers["Colour"],
                           **{"source-channel": channel, "apply-to": "layer", "solve-on": "visible", "model": "moments"})
    above = group.get_children()[group.get_children().index(layers["Colour"]) - 1] if status == "success" else None
    entry["visible"] = {"status": status, "message": message, "name": above.get_name() if above else None}
    if above is not None:
        with open(os.path.join(OUT, "group.visible.result.raw"), "wb") as f:
            f.write(read(above, "R'G'B'A u8"))
    inner = Gimp.GroupLayer.new(image, "Details")
    image.insert_layer(inner, group, 0)
    status, message = call("plug-in-simnet-manipulate", image, layers["Colour"],
                           **{"source-channel": channel, "apply-to": "group", "model": "moments"})
    entry["refused"] = message
    entry["top_after"] = layer_names(image)
    log["group"] = entry
    image.delete()


def save_ora():
    """An OpenRaster file saved by GIMP itself, for the batch tests."""
    from gi.repository import Gio

    image, layer = make_image("u8")
    layer.set_opacity(80.0)
    path = os.path.join(OUT, "saved_by_gimp.ora")
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(path), None)
    log["ora"] = {"exists": os.path.exists(path)}
    image.delete()


def install_case():
    """The plug-in as unzipped from its package, no engine on this machine: it says so, its
    "Install SIM-Net engine..." installs the engine it carries, and then it manipulates."""
    image, layer = make_image("u8")
    select(image, 16, 12, 24, 20)
    channel = Gimp.Selection.save(image)
    select(image, 50, 24, 26, 22)
    log["before"] = dict(zip(("status", "message"), call("plug-in-simnet-manipulate", image, layer, **{"source-channel": channel})))
    procedure = Gimp.get_pdb().lookup_procedure("plug-in-simnet-install-engine")
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    result = procedure.run(config)
    status = result.index(0)
    error = result.index(1) if status != Gimp.PDBStatusType.SUCCESS else None
    log["install"] = {"status": status.value_nick, "message": getattr(error, "message", None) if error is not None else None}
    status, message = call("plug-in-simnet-manipulate", image, layer, **{"source-channel": channel, "model": "moments"})
    log["after"] = {"status": status, "message": message, "layers": layer_names(image)}
    image.delete()


which = os.environ.get("SIMNET_GIMP_CASES", "all")
if which == "install":
    install_case()
elif which == "engine-missing":
    image, layer = make_image("u8")
    select(image, 16, 12, 24, 20)
    channel = Gimp.Selection.save(image)
    select(image, 50, 24, 26, 22)
    log["engine_missing"] = dict(zip(("status", "message"), call("plug-in-simnet-manipulate", image, layer, **{"source-channel": channel})))
    log["engine_missing"]["layers"] = layer_names(image)
else:
    manipulate_case("u8", "u8")
    manipulate_case("u16", "u16")
    manipulate_case("float", "float")
    manipulate_case("u8_no_alpha", "u8", with_alpha=False)
    manipulate_case("u8_feathered", "u8", feather=6.0)
    error_cases()
    segment_case()
    maps_case()
    group_case()
    save_ora()
with open(os.path.join(OUT, f"log-{which}.json"), "w") as f:
    json.dump(log, f, indent=1)
