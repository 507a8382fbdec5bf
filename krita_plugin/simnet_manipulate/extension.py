"""The Filter menu entries. Each reads the active document and layer, runs the adapter with a
progress dialog (the UI keeps painting while the engine reports progress; Cancel stops the
engine), and shows any problem in a message box. Nothing is written to the document on failure."""

from krita import Extension

from . import adapter, engine_link, krita_host
from .client import EngineError
from .qt import WINDOW_MODAL, QApplication, QMessageBox, QProgressDialog

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
        self._run("Manipulating...", lambda client, document, node, progress, on_id:
                  adapter.manipulate_with_selections(client, document, node, progress, on_id=on_id))

    def segment(self):
        self._run("Finding regions...", lambda client, document, node, progress, on_id:
                  adapter.segment_layer(client, document, node, progress=progress))

    def _run(self, label, job):
        document, node = krita_host.active_document_and_node()
        if document is None or node is None:
            QMessageBox.information(None, TITLE, "Open an image and choose the exemplar layer first.")
            return
        dialog = QProgressDialog(label, "Cancel", 0, 100)
        dialog.setWindowTitle(TITLE)
        dialog.setWindowModality(WINDOW_MODAL)
        dialog.setMinimumDuration(500)
        requests = []

        def progress(stage, fraction):
            dialog.setLabelText(f"{label} ({stage})")
            dialog.setValue(int(fraction * 100))
            QApplication.processEvents()
            if dialog.wasCanceled() and requests:
                engine_link.engine_client().cancel(requests[-1])

        try:
            job(engine_link.engine_client(), document, node, progress, requests.append)
        except adapter.PluginError as problem:
            if not dialog.wasCanceled():
                QMessageBox.warning(None, TITLE, str(problem))
        except (EngineError, OSError, ValueError) as problem:
            QMessageBox.critical(None, TITLE, f"The engine could not be reached: {problem}")
        finally:
            dialog.close()
