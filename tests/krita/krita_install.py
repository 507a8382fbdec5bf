"""Runs inside real Krita (kritarunner): the plug-in as Krita's importer leaves it from the zip,
with no engine on this machine. Asks for the engine (it is missing), installs the one the zip
carries with the plug-in's own "Install engine..." code, then manipulates a document with it.
Writes what happened to JSON for tests/test_krita.py. Standard library and Krita only."""

import json
import os
import sys
import traceback
from pathlib import Path


def main(args):
    work = Path(args[0])
    spec = json.loads((work / "install_spec.json").read_text())
    sys.path.insert(0, spec["pykrita"])
    outcome = {}
    try:
        from krita import Krita, Selection
        from krita_cases import select
        from simnet_manipulate import adapter, engine_link

        try:
            engine_link.engine_client().hello()
            outcome["before"] = "reachable"
        except Exception as problem:  # the engine is missing: what the artist is told
            outcome["before"] = str(problem)
        lines = []
        outcome["command"] = engine_link.install(lambda text, fraction: lines.append([text, fraction]))
        outcome["fractions"] = [fraction for _, fraction in lines if fraction >= 0]
        outcome["last_lines"] = [text for text, _ in lines[-3:]]
        outcome["models"] = engine_link.engine_client().hello()["models"]
        width, height = spec["width"], spec["height"]
        document = Krita.instance().createDocument(width, height, "installed", "RGBA", "U8", "", 72.0)
        document.setBatchmode(True)
        layer = document.createNode("Exemplar", "paintlayer")
        layer.setPixelData((work / "U8.raw").read_bytes(), 0, 0, width, height)
        document.rootNode().addChildNode(layer, None)
        select(document, layer, work, "source.raw", "target.raw", Selection)
        made = adapter.manipulate_with_selections(engine_link.engine_client(), document, layer, model="moments")
        outcome["new_layer"] = made.name()
        (work / "installed.result").write_bytes(bytes(made.pixelData(0, 0, width, height)))
        document.close()
        engine_link.close()
    except Exception:
        outcome["crash"] = traceback.format_exc()
    (work / "install_outcome.json").write_text(json.dumps(outcome, indent=1))
    os._exit(0)
