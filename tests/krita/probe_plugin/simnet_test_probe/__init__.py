"""Test only (tests/test_krita.py installs it into a throw-away profile). Once Krita's window is
up it records whether the SIM-Net actions exist and where the Filter menu shows them and saves a
screenshot; with $SIMNET_PROBE_WORK it also builds the prepared document there, makes it active,
triggers "Manipulate region from exemplar..." (the plug-in's test hook accepts the dialog's
defaults), and records the layers, the result's pixels and how often a 50 ms UI timer fired
meanwhile. Everything goes to $SIMNET_PROBE_OUT/gui.json, then Krita quits."""

import json
import os
import time

from krita import Extension, Krita, Selection
from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QApplication


def manipulate_in_window(window, work, out):
    spec = json.loads(open(os.path.join(work, "gui_spec.json")).read())
    width, height = spec["width"], spec["height"]
    document = Krita.instance().createDocument(width, height, "probe", "RGBA", "U8", "", 72.0)
    layer = document.createNode("Exemplar", "paintlayer")
    layer.setPixelData(open(os.path.join(work, "U8.raw"), "rb").read(), 0, 0, width, height)
    document.rootNode().addChildNode(layer, None)
    source = Selection()
    source.setPixelData(open(os.path.join(work, "source.raw"), "rb").read(), 0, 0, width, height)
    mask = document.createSelectionMask("Source")
    mask.setSelection(source)
    layer.addChildNode(mask, None)
    target = Selection()
    target.setPixelData(open(os.path.join(work, "target.raw"), "rb").read(), 0, 0, width, height)
    document.setSelection(target)
    window.addView(document)
    Krita.instance().setActiveDocument(document)
    document.setActiveNode(layer)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(50)
    start = time.monotonic()
    Krita.instance().action("simnet_manipulate").trigger()  # returns once the dialog and the job are done
    elapsed = time.monotonic() - start
    timer.stop()
    names = [n.name() for n in document.rootNode().childNodes() if n.type() != "selectionmask"]
    result = next((n for n in document.rootNode().childNodes() if n.name() == "Manipulated Exemplar"), None)
    if result is not None:
        open(os.path.join(out, "gui_result.raw"), "wb").write(bytes(result.pixelData(0, 0, width, height)))
    found = {"layers": names, "seconds": elapsed, "timer_ticks": len(ticks),
             "exemplar_unchanged": bytes(layer.pixelData(0, 0, width, height)) == open(os.path.join(work, "U8.raw"), "rb").read()}
    found["after_undo"] = _undo_once(document)
    found["mirrored_group"] = _mirrored_group_undo(document, layer)
    return found


def _layer_names(document):
    return [n.name() for n in document.rootNode().childNodes() if n.type() != "selectionmask"]


def _undo_once(document):
    """The top-level layers after one Edit > Undo."""
    Krita.instance().action("edit_undo").trigger()
    QApplication.processEvents()
    document.waitForDone()
    return _layer_names(document)


def _mirrored_group_undo(document, layer):
    """A mirrored group inserted by the plug-in (as 'Apply to' makes it) goes with one Undo."""
    from simnet_manipulate import adapter
    from simnet_manipulate.link.client import Image

    width, height = document.width(), document.height()
    edit = adapter.Edit(exemplar=layer, apply_to="layer")
    before = _layer_names(document)
    shown = Image(bytes(layer.pixelData(0, 0, width, height)), width, height, 4, "uint8")
    adapter.insert_mirrored(document, edit, [layer], [shown])
    document.waitForDone()
    inserted = _layer_names(document)
    return {"before": before, "inserted": inserted, "after_undo": _undo_once(document)}


def report():
    window = Krita.instance().activeWindow() or Krita.instance().windows()[0]
    out = os.environ["SIMNET_PROBE_OUT"]
    found = {"extensions": sorted(type(e).__module__ for e in Krita.instance().extensions())}
    try:
        for name in ("simnet_manipulate", "simnet_segment"):
            action = Krita.instance().action(name)
            found[name] = None if action is None else action.text()
        menus = {}
        for entry in window.qwindow().menuBar().actions():
            if entry.menu() is not None:
                menus[entry.menu().objectName() or entry.text()] = [a.objectName() for a in entry.menu().actions()]
        found["menus"] = menus
        window.qwindow().grab().save(os.path.join(out, "krita_window.png"))
        if os.environ.get("SIMNET_PROBE_WORK"):
            found["manipulate"] = manipulate_in_window(window, os.environ["SIMNET_PROBE_WORK"], out)
    except Exception as error:  # reported to the test, which fails with it
        found["crash"] = repr(error)
    with open(os.path.join(out, "gui.json"), "w") as handle:
        json.dump(found, handle, indent=1)
    os._exit(0)  # Krita may crash at teardown after a window was opened


class Probe(Extension):
    def setup(self):
        pass

    def createActions(self, window):
        QTimer.singleShot(3000, report)  # the window wrapper given here does not outlive this call


Krita.instance().addExtension(Probe(Krita.instance()))
