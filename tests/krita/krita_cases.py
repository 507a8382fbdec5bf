"""Runs inside real Krita (kritarunner): drives the installed plug-in's adapter on documents
built from the raw inputs that tests/test_krita.py wrote, and writes what happened to JSON and
raw files for the test to check. Standard library and Krita only, as in a user's Krita."""

import json
import os
import sys
import traceback
from pathlib import Path


def select(document, layer, work, source, target, Selection, mask_name="Source"):
    """The edit as an artist sets it up: `source` (a raw mask file in `work`) as a local selection
    mask on `layer`, `target` as the document's selection (either may be None)."""
    width, height = document.width(), document.height()
    if source:
        region = Selection()
        region.setPixelData((work / source).read_bytes(), 0, 0, width, height)
        mask = document.createSelectionMask(mask_name)
        mask.setSelection(region)
        layer.addChildNode(mask, None)
    if target:
        place = Selection()
        place.setPixelData((work / target).read_bytes(), 0, 0, width, height)
        document.setSelection(place)


def _layers_case(work, case, client, adapter, Krita, Selection):
    """A group of three layers (line art, colour, shadow) of distinct looks; the colour layer is
    the painting, with a selection mask of the figure; the group gets the edit. Then, in a new
    document, the same edit solved on the visible image goes to the colour layer alone."""
    record = _group_edit(work, case, client, adapter, Krita, Selection)
    # the same, solved on the visible image and given to the painting layer alone
    visible = _group_edit(work, case, client, adapter, Krita, Selection, on_visible=True)
    record["visible"] = {key: visible[key] for key in ("root", "group_children", "originals_unchanged")}
    return record


def _group_edit(work, case, client, adapter, Krita, Selection, on_visible=False):
    width, height = case["width"], case["height"]
    document = Krita.instance().createDocument(width, height, "layers", "RGBA", "U8", "", 72.0)
    document.setBatchmode(True)
    group = document.createGroupLayer("Figure")
    group.setOpacity(230)
    document.rootNode().addChildNode(group, None)
    nodes, below = {}, None
    for name, opacity, blending, visible in case["layers"]:  # bottom first
        node = document.createNode(name, "paintlayer")
        node.setPixelData((work / f"{name}.raw").read_bytes(), 0, 0, width, height)
        node.setOpacity(opacity)
        node.setBlendingMode(blending)
        node.setVisible(visible)
        group.addChildNode(node, below)
        nodes[name], below = node, node
    painting = nodes[case["painting"]]
    select(document, painting, work, "layers_source.raw", "layers_target.raw", Selection, "Figure mask")
    before = {name: bytes(node.pixelData(0, 0, width, height)) for name, node in nodes.items()}
    record = {}
    edit = adapter.default_edit(document, painting)
    edit.apply_to, edit.model = "group", "moments"
    if on_visible:
        from simnet_manipulate import krita_host

        (work / "layers_visible.raw").write_bytes(krita_host.read_visible(document))
        edit.apply_to, edit.solve_on_visible = "layer", True
        request = adapter.request_for(document, edit)
        images = adapter.layer_images(document, [painting], request.order)
        made = adapter.insert_result(document, edit, adapter.compute_layers(client, request, images)[0])
        (work / "layers_visible.result").write_bytes(bytes(made.pixelData(0, 0, width, height)))
        record["root"] = [n.name() for n in document.rootNode().childNodes()]
        record["group_children"] = [n.name() for n in group.childNodes() if n.type() == "paintlayer"]
        record["originals_unchanged"] = all(bytes(nodes[n].pixelData(0, 0, width, height)) == b for n, b in before.items())
        document.close()
        return record
    request = adapter.request_for(document, edit)
    chosen = adapter.layers_to_edit(document, edit)
    made = adapter.insert_mirrored(document, edit, chosen, adapter.compute_layers(client, request,
                                   adapter.layer_images(document, chosen, request.order)))
    record["root"] = [n.name() for n in document.rootNode().childNodes()]
    record["group"] = [made.name(), made.opacity(), made.type()]
    record["children"] = [[n.name(), n.opacity(), n.blendingMode(), n.visible()] for n in made.childNodes()]
    for node in made.childNodes():
        (work / f"layers_{node.name()}.result").write_bytes(bytes(node.pixelData(0, 0, width, height)))
    record["originals_unchanged"] = all(bytes(nodes[n].pixelData(0, 0, width, height)) == b for n, b in before.items())
    record["original_group"] = [[n.name(), n.opacity(), n.blendingMode(), n.visible()] for n in group.childNodes()
                                if n.type() == "paintlayer"]
    # a vector layer in the group is refused by name, and nothing is added
    group.addChildNode(document.createVectorLayer("Inked outline"), None)
    try:
        adapter.layers_to_edit(document, edit)
    except adapter.PluginError as problem:
        record["refused"] = str(problem)
    record["root_after_refusal"] = [n.name() for n in document.rootNode().childNodes()]
    document.close()
    return record


def main(args):
    work = Path(args[0])
    spec = json.loads((work / "spec.json").read_text())
    sys.path.insert(0, spec["pykrita"])
    outcome = {}
    try:
        from krita import Krita, Selection
        from simnet_manipulate import adapter, engine_link
        from simnet_manipulate.link.client import Client

        working = engine_link.engine_client()
        missing = Client(["/nonexistent/python3", "-m", "engine", "worker"])  # an uninstalled engine
        for case in spec["cases"]:
            width, height = case["width"], case["height"]
            document = Krita.instance().createDocument(width, height, case["name"], case["model"], case["depth"], "", 72.0)
            document.setBatchmode(True)
            layer = document.createNode("Exemplar", "paintlayer")
            layer.setPixelData((work / case["pixels"]).read_bytes(), 0, 0, width, height)
            document.rootNode().addChildNode(layer, None)
            select(document, layer, work, case.get("source"), case.get("target"), Selection)
            before = bytes(layer.pixelData(0, 0, width, height))
            record = {}
            client = missing if case.get("engine") == "missing" else working
            try:
                if case["action"] == "maps":  # region maps painted on two more layers
                    maps = []
                    for key in ("exemplar_map", "target_map"):
                        node = document.createNode(key, "paintlayer")
                        node.setPixelData((work / case[key]).read_bytes(), 0, 0, width, height)
                        document.rootNode().addChildNode(node, None)
                        maps.append(node)
                    edit = adapter.Edit(exemplar=layer, exemplar_map=maps[0], target_map=maps[1])
                    new = adapter.insert_result(document, edit, adapter.compute(client, adapter.request_for(document, edit)))
                elif case["action"] == "manipulate":
                    new = adapter.manipulate_with_selections(client, document, layer)
                else:
                    new = adapter.segment_layer(client, document, layer, max_regions=4)
                (work / f"{case['name']}.result").write_bytes(bytes(new.pixelData(0, 0, width, height)))
                record["new_layer"] = new.name()
            except adapter.PluginError as problem:
                record["error"] = str(problem)
            record["exemplar_unchanged"] = bytes(layer.pixelData(0, 0, width, height)) == before
            record["layers"] = [(n.name(), n.type()) for n in document.rootNode().childNodes() if n.type() != "selectionmask"]
            outcome[case["name"]] = record
            document.close()
        if spec.get("save_ora"):  # an OpenRaster file written by Krita itself, for the batch tests
            first = spec["cases"][0]
            document = Krita.instance().createDocument(first["width"], first["height"], "layers", "RGBA", "U8", "", 72.0)
            document.setBatchmode(True)
            for name, opacity in (("Paper", 255), ("Figure", 204)):
                node = document.createNode(name, "paintlayer")
                node.setPixelData((work / first["pixels"]).read_bytes(), 0, 0, first["width"], first["height"])
                node.setOpacity(opacity)
                document.rootNode().addChildNode(node, None)
            document.refreshProjection()
            outcome["ora_saved"] = document.saveAs(str(work / "saved_by_krita.ora"))
            document.close()
        if spec.get("layers_case"):  # one edit, every layer of a group
            outcome["layers"] = _layers_case(work, spec["layers_case"], working, adapter, Krita, Selection)
        # the maps-mode defaults over layer names, top of the stack first, as the dialog lists them
        outcome["default_maps"] = {
            "segmented": adapter.default_maps(["Regions of Exemplar copy", "Regions of Exemplar", "Exemplar", "Paper"]),
            "plain": adapter.default_maps(["Top", "Exemplar"]),
            "one layer": adapter.default_maps(["Exemplar"]),
        }
        engine_link.close()
    except Exception:
        outcome["crash"] = traceback.format_exc()
    (work / "outcome.json").write_text(json.dumps(outcome, indent=1))
    os._exit(0)
