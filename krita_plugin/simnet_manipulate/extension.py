"""The Filter menu entries. "Manipulate region from exemplar..." opens the dialog; both then run
the engine off the UI thread with a progress dialog whose Cancel stops the engine, and change the
document (one new layer, or one new group mirroring the layers the edit was applied to) only on
success. Problems are shown in a message box."""

from krita import Extension

from . import adapter, engine_link, krita_host
from .background import run_and_wait
from .dialog import ManipulateDialog
from .link.client import EngineError
from .qt import WINDOW_MODAL, QMessageBox, QProgressDialog

TITLE = "SIM-Net Manipulate"


class SimnetExtension(Extension):
    def setup(self):
        pass

    def createActions(self, window):
        manipulate = window.createAction("simnet_manipulate", "Manipulate region from exemplar...", "filter")
        manipulate.triggered.connect(self.manipulate)
        segment = window.createAction("simnet_segment", "Segment exemplar into regions", "filter")
        segment.triggered.connect(self.segment)

    def manipulate(self):
        document, node = krita_host.active_document_and_node()
        if document is None:
            QMessageBox.information(None, TITLE, "Open an image and choose the exemplar layer first.")
            return
        try:
            client = engine_link.engine_client()
            engine = run_and_wait(lambda progress: client.hello())  # may start the worker
        except (EngineError, OSError, ValueError) as problem:
            QMessageBox.critical(None, TITLE, _unreachable(problem))
            return
        dialog = ManipulateDialog(client, document, node, engine["models"], engine.get("default_model"))
        if not (dialog.exec() if hasattr(dialog, "exec") else dialog.exec_()):
            return
        edit = dialog.edit()
        try:
            request = adapter.request_for(document, edit)
            nodes = adapter.layers_to_edit(document, edit)
            several = edit.apply_to != "layer" or edit.solve_on_visible
            images = adapter.layer_images(document, nodes, request.order) if several else []
        except adapter.PluginError as problem:
            QMessageBox.warning(None, TITLE, str(problem))
            return
        if edit.apply_to == "layer" and not edit.solve_on_visible:
            self._run("Manipulating...", lambda progress, on_id: adapter.compute(client, request, progress, on_id),
                      lambda result: adapter.insert_result(document, edit, result))
        elif edit.apply_to == "layer":  # solved on the visible image, replayed on the layer
            self._run("Manipulating...",
                      lambda progress, on_id: adapter.compute_layers(client, request, images, progress, on_id),
                      lambda results: adapter.insert_result(document, edit, results[0]))
        else:  # solved once, replayed on each layer, laid in as one mirrored group
            self._run("Manipulating...",
                      lambda progress, on_id: adapter.compute_layers(client, request, images, progress, on_id),
                      lambda results: adapter.insert_mirrored(document, edit, nodes, results))

    def segment(self):
        document, node = krita_host.active_document_and_node()
        if document is None or node is None:
            QMessageBox.information(None, TITLE, "Open an image and choose the layer to segment first.")
            return
        try:
            image, order = adapter.exemplar_image(document, node)
        except adapter.PluginError as problem:
            QMessageBox.warning(None, TITLE, str(problem))
            return
        self._run("Finding regions...",
                  lambda progress, on_id: adapter.segment_colours(engine_link.engine_client(), image, order, progress),
                  lambda colours: adapter.insert_segmentation(document, node, colours))

    def _run(self, label, compute, write):
        """compute(progress, on_id) on a worker thread, then write(result) here."""
        progress_dialog = QProgressDialog(label, "Cancel", 0, 100)
        progress_dialog.setWindowTitle(TITLE)
        progress_dialog.setWindowModality(WINDOW_MODAL)
        progress_dialog.setMinimumDuration(500)
        requests = []
        progress_dialog.canceled.connect(lambda: requests and engine_link.engine_client().cancel(requests[-1]))

        def show(stage, fraction):
            progress_dialog.setLabelText(f"{label} ({stage})")
            progress_dialog.setValue(int(fraction * 100))

        try:
            result = run_and_wait(lambda progress: compute(progress, requests.append), show)
            write(result)
        except adapter.PluginError as problem:
            if not progress_dialog.wasCanceled():
                QMessageBox.warning(None, TITLE, str(problem))
        except (EngineError, OSError, ValueError) as problem:
            QMessageBox.critical(None, TITLE, _unreachable(problem))
        finally:
            progress_dialog.close()


def _unreachable(problem):
    return f"The SIM-Net engine could not be reached: {problem}\n\nReinstall the plug-in with `simnet install-plugin krita`."
