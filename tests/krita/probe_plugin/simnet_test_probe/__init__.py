"""Test only (tests/test_krita.py installs it into a throw-away profile): once Krita's window
is up, record whether the SIM-Net actions exist and where the Filter menu shows them, save a
screenshot, write it all to $SIMNET_PROBE_OUT, and quit."""

import json
import os

from krita import Extension, Krita
from PyQt5.QtCore import QTimer


def report():
    window = Krita.instance().activeWindow() or Krita.instance().windows()[0]
    found = {"extensions": sorted(type(e).__module__ for e in Krita.instance().extensions())}
    for name in ("simnet_manipulate", "simnet_segment"):
        action = Krita.instance().action(name)
        found[name] = None if action is None else action.text()
    menus = {}
    for entry in window.qwindow().menuBar().actions():
        if entry.menu() is not None:
            menus[entry.menu().objectName() or entry.text()] = [a.objectName() for a in entry.menu().actions()]
    found["menus"] = menus
    out = os.environ["SIMNET_PROBE_OUT"]
    window.qwindow().grab().save(os.path.join(out, "krita_window.png"))
    with open(os.path.join(out, "gui.json"), "w") as handle:
        json.dump(found, handle, indent=1)
    os._exit(0)  # Krita may crash at teardown after a window was opened


class Probe(Extension):
    def setup(self):
        pass

    def createActions(self, window):
        QTimer.singleShot(3000, report)  # the window wrapper given here does not outlive this call


Krita.instance().addExtension(Probe(Krita.instance()))
