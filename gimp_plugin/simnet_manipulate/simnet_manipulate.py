#!/usr/bin/env python3
"""SIM-Net Manipulate for GIMP 3: two procedures under Filters > SIM-Net.

- "Manipulate region from exemplar...": the active layer is the exemplar; either a saved
  selection (a channel) is the region and the current selection is where it goes, or two
  region-map layers give the old and new layout. The dialog has a live preview that follows every
  change, with a before/after toggle and a zoom to the edit. The result is a new layer above the exemplar,
  or, applied to every layer of its group or to the selected layers, a new layer group that
  mirrors them (the edit solved once on the exemplar and replayed on each).
- "Segment exemplar into regions": a flat-colour region map of the active layer, as a new layer
  to duplicate and repaint.
- "Install SIM-Net engine...": installs the engine this plug-in carries (from its zip) into a
  private Python environment, for a machine that has none.
Both read the image, ask the engine worker (a separate process with its own Python), then
write; errors come back as GIMP errors with a message for the artist, and nothing is changed.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the modules beside this file

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
import adapter  # noqa: E402
import gimp_host as host  # noqa: E402
from gi.repository import Gimp, GimpUi, GLib, GObject, Gtk  # noqa: E402
from live_preview import LivePreview  # noqa: E402

MANIPULATE = "plug-in-simnet-manipulate"
SEGMENT = "plug-in-simnet-segment"
INSTALL = "plug-in-simnet-install-engine"
MENU = "<Image>/Filters/SIM-Net"
RW = GObject.ParamFlags.READWRITE


def _choice(options):
    """A Gimp.Choice of (nick, label) pairs, in their order."""
    choice = Gimp.Choice.new()
    for index, (nick, label) in enumerate(options):
        choice.add(nick, index, label, "")
    return choice


MODES = (("selection", "Move a saved selection into the current selection"), ("maps", "Rearrange with two region-map layers"))
SOLVE_ON = (("layer", "The painting layer"), ("visible", "The visible image (all layers)"))
DEFAULT_NICK = "default"  # adapter.model_options: the engine's own default model


def _pickers_follow_the_mode(dialog, config):
    """Only the pickers of the chosen mode can be used."""

    def update(*_):
        maps = config.get_property("mode") == "maps"
        for name, enabled in (("source-channel", not maps), ("exemplar-map", maps), ("target-map", maps)):
            widget = dialog.get_widget(name, GObject.TYPE_NONE)
            if widget is not None:
                widget.set_sensitive(enabled)

    config.connect("notify::mode", update)
    update()


def _name_the_region(dialog, config):
    """The saved selection in use, by name, under the arguments: GIMP 3.0's channel picker shows
    no name, and an empty-looking thumbnail even when one is chosen."""
    label = Gtk.Label(xalign=0.0)

    def update(*_):
        channel = config.get_property("source-channel")
        label.set_text(f"Region to move: '{host.item_name(channel)}'" if channel is not None else
                       "Region to move: none chosen (Select > Save to Channel makes one)")

    dialog.get_content_area().pack_start(label, False, False, 3)
    label.show()
    config.connect("notify::source-channel", update)
    update()


def _fail(procedure, message):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


def _progress(stage, fraction):
    host.progress_update(fraction)


def _with_engine(procedure, text, work):
    """Run `work(client)` with a fresh engine worker and GIMP's progress bar; a PluginError (or
    an engine that cannot start) becomes a GIMP error with its message. The worker is closed
    whatever happens."""
    client = None
    try:
        client = adapter.engine_client()
        host.progress_start(text)
        work(client)
        host.flush_displays()
    except (adapter.PluginError, OSError) as error:
        return _fail(procedure, str(error))
    finally:
        if client is not None:
            client.close()
        host.progress_end()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)


def _model(config):
    chosen = config.get_property("model")
    return config.get_property("model-folder") or (None if chosen == DEFAULT_NICK else chosen)


def _read_request(image, drawable, config):
    """The painting and the edit as the arguments say, read from the image (GIMP's thread)."""
    if config.get_property("mode") == "maps":
        request = adapter.request_from_maps(
            image, drawable, config.get_property("exemplar-map"), config.get_property("target-map"), _model(config))
    else:
        request = adapter.request_from_selection(image, drawable, config.get_property("source-channel"), _model(config))
    if config.get_property("solve-on") == "visible":
        request = adapter.solved_on_visible(image, request)
    return request


def run_manipulate(procedure, run_mode, image, drawables, config, data):
    if run_mode == Gimp.RunMode.INTERACTIVE:
        GimpUi.init("simnet_manipulate")
        saved = image.get_channels()
        if config.get_property("source-channel") is None and saved:
            config.set_property("source-channel", saved[0])  # the topmost saved selection
        dialog = GimpUi.ProcedureDialog.new(procedure, config, "Manipulate region from exemplar")
        dialog.fill(None)
        _pickers_follow_the_mode(dialog, config)
        _name_the_region(dialog, config)
        painting = drawables[0] if drawables else None
        preview = LivePreview(dialog, config, lambda: _read_request(image, painting, config))
        try:
            accepted = dialog.run()
        finally:
            preview.close()
        dialog.destroy()
        if not accepted:
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
    apply_to = config.get_property("apply-to")
    # several selected layers: the topmost is the painting, and they all get the edit
    drawable = drawables[0] if len(drawables) == 1 or (drawables and apply_to == "selected") else None
    if len(drawables) > 1 and apply_to != "selected":
        return _fail(procedure, "Several layers are selected: select the painting layer alone, or apply the edit "
                                "to the selected layers.")
    try:  # read everything before starting the engine
        request = _read_request(image, drawable, config)
        visible = config.get_property("solve-on") == "visible"
        layers = adapter.layers_to_edit(image, drawable, apply_to, drawables)
        images = adapter.layer_images(image, layers) if apply_to != "layer" or visible else []
    except adapter.PluginError as error:
        return _fail(procedure, str(error))

    def manipulate(client):
        if apply_to == "layer" and not visible:
            adapter.insert_result(image, drawable, adapter.compute(client, request, _progress))
        elif apply_to == "layer":  # solved on the visible image, replayed on the layer
            adapter.insert_result(image, drawable, adapter.compute_layers(client, request, images, _progress)[0])
        else:  # solved once, replayed on each layer, laid in as one mirrored group
            adapter.insert_mirrored(image, drawable, apply_to, layers, adapter.compute_layers(client, request, images, _progress))

    return _with_engine(procedure, "Manipulating region from exemplar", manipulate)


def run_segment(procedure, run_mode, image, drawables, config, data):
    drawable = drawables[0] if len(drawables) == 1 else None
    maximum = config.get_property("max-regions")

    def segment(client):
        adapter.segment_layer(client, image, drawable, maximum or None, _progress)

    return _with_engine(procedure, "Segmenting into regions", segment)


def run_install(procedure, config, data):
    """Install the engine this plug-in carries, with GIMP's progress bar showing pip's lines."""

    def report(text, fraction):
        Gimp.progress_set_text(text[:100])
        if fraction is not None:
            host.progress_update(fraction)

    try:
        host.progress_start("Installing the SIM-Net engine")
        command = adapter.install_engine(report)
    except (adapter.PluginError, OSError) as error:
        return _fail(procedure, str(error))
    finally:
        host.progress_end()
    Gimp.message(f"The SIM-Net engine is installed ({command[0]}): Filters > SIM-Net > Manipulate region from "
                 "exemplar... is ready.")
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)


class SimnetManipulate(Gimp.PlugIn):
    def do_query_procedures(self):
        return [MANIPULATE, SEGMENT, INSTALL]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        if name == INSTALL:
            procedure = Gimp.Procedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_install, None)
            procedure.set_menu_label("Install SIM-Net engine...")
            procedure.set_documentation(
                "Install the engine this plug-in carries",
                "Makes a private Python environment in your data folder and installs the SIM-Net engine there, "
                "with its packages from the internet (a few minutes, once).",
                name,
            )
            # a procedure in the <Image> menus takes the run mode first
            procedure.add_enum_argument("run-mode", "Run mode", "The run mode", Gimp.RunMode, Gimp.RunMode.NONINTERACTIVE, RW)
            return _in_menu(procedure)
        if name == MANIPULATE:
            procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_manipulate, None)
            procedure.set_menu_label("Manipulate region from exemplar...")
            procedure.set_documentation(
                "Move or reshape regions, made from the layer's own pixels",
                "The active layer is the exemplar. Selection mode: a saved selection (channel) is the region, "
                "the current selection is where it goes. Region-map mode: two flat-colour layers give the old "
                "and new layout. The result is a new layer above the exemplar.",
                name,
            )
            procedure.add_choice_argument("mode", "_Mode", "How the edit is given", _choice(MODES), "selection", RW)
            # mnemonics: R is the dialog's Reset button
            procedure.add_channel_argument("source-channel", "Re_gion (saved selection)", "The region to move", True, RW)
            procedure.add_layer_argument("exemplar-map", "_Painting's region map", "Flat colours: the painting's regions", True, RW)
            procedure.add_layer_argument("target-map", "_Edited region map", "The edited copy of that map", True, RW)
            models = _choice(adapter.model_options())
            procedure.add_choice_argument("model", "Mo_del", "How motions are found", models, DEFAULT_NICK, RW)
            procedure.add_string_argument("model-folder", "Model _folder", "An exported model folder (instead of the choice)", "", RW)
            procedure.add_choice_argument("apply-to", "_Apply to", "Solved once on the painting layer, replayed on each "
                                          "layer, so line art and colours move alike; the results arrive as a new group",
                                          _choice(adapter.APPLY_TO), "layer", RW)
            procedure.add_choice_argument("solve-on", "_Solve on", "What the edit is worked out on: the painting layer, "
                                          "or every visible layer merged", _choice(SOLVE_ON), "layer", RW)
        else:
            procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_segment, None)
            procedure.set_menu_label("Segment exemplar into regions")
            procedure.set_documentation(
                "A flat-colour region map of the active layer",
                "Adds a layer of flat colours, one per region, to duplicate and repaint as the new layout.",
                name,
            )
            procedure.add_int_argument("max-regions", "Maximum regions", "0: automatic", 0, 256, 0, RW)
        procedure.set_image_types("*")
        sensitive = Gimp.ProcedureSensitivityMask.DRAWABLE
        if name == MANIPULATE:  # several selected layers may all get the edit
            sensitive |= Gimp.ProcedureSensitivityMask.DRAWABLES
        procedure.set_sensitivity_mask(sensitive)
        return _in_menu(procedure)


def _in_menu(procedure):
    """The procedure under Filters > SIM-Net, with its attribution."""
    procedure.add_menu_path(MENU)
    procedure.set_attribution("SIM-Net Manipulate", "SIM-Net Manipulate (MIT)", "2026")
    return procedure


Gimp.main(SimnetManipulate.__gtype__, sys.argv)
