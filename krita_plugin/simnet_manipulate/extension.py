"""The Filter menu entries. "Manipulate region from exemplar..." opens the dialog; it and
"Segment exemplar into regions" then run the engine off the UI thread with a progress dialog
whose Cancel stops the engine, and change the document (one new layer, or one new group
mirroring the layers the edit was applied to) only on success. Problems are shown in a message
box; where the engine cannot be reached, it offers "Install engine...", which the menu has too
("Install SIM-Net engine...")."""

from krita import Extension

from . import adapter, engine_link, krita_host
from .background import run_and_wait
from .dialog import ManipulateDialog
from .link.client import EngineError
from .link.engine_setup import SetupError
from .qt import ACCEPT_ROLE, CLOSE, CRITICAL, WINDOW_MODAL, QMessageBox, QProgressDialog

TITLE = "SIM-Net Manipulate"


class SimnetExtension(Extension):
    def setup(self):
        pass

    def createActions(self, window):
        manipulate = window.createAction("simnet_manipulate", "Manipulate region from exemplar...", "filter")
        manipulate.triggered.connect(self.manipulate)
        segment = window.createAction("simnet_segment", "Segment exemplar into regions", "filter")
        segment.triggered.connect(self.segment)
        install = window.createAction("simnet_install_engine", "Install SIM-Net engine...", "filter")
        install.triggered.connect(self.install_engine)

    def manipulate(self):
        document, node = krita_host.active_document_and_node()
        if document is None:
            QMessageBox.information(None, TITLE, "Open an image and choose the exemplar layer first.")
            return
        try:
            client = engine_link.engine_client()
            engine = run_and_wait(lambda progress: client.hello())  # may start the worker
        except (EngineError, OSError, ValueError) as problem:
            self._offer_install(problem)
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
        progress_dialog = _progress_dialog(label, 500)
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
            self._offer_install(problem)
        finally:
            progress_dialog.close()

    def _offer_install(self, problem):
        """The engine cannot be reached: say why, and offer to install the one the plug-in carries."""
        box = QMessageBox(CRITICAL, TITLE, _unreachable(problem))
        install = box.addButton("Install engine...", ACCEPT_ROLE)
        box.addButton(CLOSE)
        box.exec() if hasattr(box, "exec") else box.exec_()
        if box.clickedButton() == install:
            self.install_engine()

    def install_engine(self):
        """Install the engine this plug-in carries (a private Python environment in the user's data
        folder, the engine and its packages from the registry), with pip's progress shown."""
        progress_dialog = _progress_dialog("Installing the SIM-Net engine...", 0)
        stopped = []
        progress_dialog.canceled.connect(lambda: stopped.append(True))

        def work(progress):  # on the install's thread: stop there when asked
            def report(text, fraction):
                if stopped:
                    raise InstallCancelled()
                progress(text, fraction)

            return engine_link.install(report)

        def show(text, fraction):
            progress_dialog.setLabelText(f"Installing the SIM-Net engine...\n{text[:120]}")
            if fraction >= 0:
                progress_dialog.setValue(int(fraction * 100))

        try:
            run_and_wait(work, show)
        except InstallCancelled:
            QMessageBox.information(None, TITLE, "The engine was not installed.")
            return
        except (SetupError, OSError) as problem:
            QMessageBox.critical(None, TITLE, f"The engine could not be installed: {problem}")
            return
        finally:
            progress_dialog.close()
        QMessageBox.information(None, TITLE, "The SIM-Net engine is installed: Filter > Manipulate region from exemplar... "
                                "is ready.")


def _progress_dialog(label, shown_after_ms):
    """A window-modal progress dialog with Cancel, shown once the work has taken `shown_after_ms`."""
    dialog = QProgressDialog(label, "Cancel", 0, 100)
    dialog.setWindowTitle(TITLE)
    dialog.setWindowModality(WINDOW_MODAL)
    dialog.setMinimumDuration(shown_after_ms)
    return dialog


class InstallCancelled(Exception):
    pass


def _unreachable(problem):
    return (f"The SIM-Net engine could not be reached: {problem}\n\nInstall engine... installs the engine this "
            "plug-in carries (a few minutes, from the internet); or reinstall the plug-in with "
            "`simnet install-plugin krita` where SIM-Net is installed.")
