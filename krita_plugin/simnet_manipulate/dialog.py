"""The "Manipulate region from exemplar" dialog: exemplar layer, the edit (selections or region
maps), model, the layers it goes to, and a live low-resolution preview that follows every change,
with a before/after toggle and a zoom to the edited area."""

import os

from . import adapter
from . import krita_host as host
from .background import Job
from .link.client import model_choices
from .qt import (
    CANCEL,
    KEEP_ASPECT,
    OK,
    RGBA8888,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QImage,
    QLabel,
    QPixmap,
    QRadioButton,
    QTimer,
    QVBoxLayout,
)

PREVIEW_DELAY_MS = 300


class ManipulateDialog(QDialog):
    def __init__(self, client, document, node, models, default_model=None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Manipulate region from exemplar")
        self.client, self.document = client, document
        self.layers = host.paint_layers(document)
        self.masks = host.all_selection_masks(document)
        defaults = adapter.default_edit(document, node)
        self.exemplar = self._combo([host.node_name(n) for n in self.layers], self._index(self.layers, node))
        self.by_selection = QRadioButton("Move a selection: the region's selection mask into the current selection")
        self.by_maps = QRadioButton("Rearrange with region maps: the painting's map and an edited copy")
        modes = QButtonGroup(self)
        for button in (self.by_selection, self.by_maps):
            modes.addButton(button)
        self.by_selection.setChecked(True)
        self.source = self._combo([self._mask_label(m) for m in self.masks], self._index(self.masks, defaults.source))
        names = [host.node_name(n) for n in self.layers]
        maps = adapter.default_maps(names)
        self.exemplar_map = self._combo(names, maps[0] if maps else 0)
        self.target_map = self._combo(names, maps[1] if maps else 0)
        self.maps_note = QLabel("" if maps else "Region maps need two layers: the painting's map (Segment makes one) "
                                "and an edited copy of it.")
        self.models = model_choices(models, default_model)
        self.model = self._combo([label for _, label in self.models], 0)
        self.apply_to = self._combo([label for _, label in adapter.APPLY_TO], 0)
        self.solve_on = self._combo(["The painting layer", "The visible image (all layers)"], 0)
        self.solve_on.setToolTip("What the edit is worked out on: the painting layer, or every visible layer "
                                 "merged (as you see it). Either way the result is made of each layer's own pixels.")
        self.apply_to.setToolTip("The edit is solved once on the painting layer and replayed on each layer, "
                                 "so line art and colours move alike; the results arrive as a new group.")
        self.preview_label = QLabel("Preview")
        self.preview_label.setMinimumSize(adapter.PREVIEW_SIDE, adapter.PREVIEW_SIDE * 2 // 3)
        self.preview_shown = None  # the last link.client.Preview
        self.show_before = QCheckBox("Show the painting &before the edit")
        self.zoom = QCheckBox("&Zoom to the edit")
        for box in (self.show_before, self.zoom):
            box.toggled.connect(self._render_preview)
        toggles = QHBoxLayout()
        toggles.addWidget(self.show_before)
        toggles.addWidget(self.zoom)
        toggles.addStretch(1)
        buttons = QDialogButtonBox(OK | CANCEL)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Painting layer", self.exemplar)
        form.addRow(self.by_selection)
        form.addRow("Region to move", self.source)
        form.addRow(self.by_maps)
        form.addRow("Painting's region map", self.exemplar_map)
        form.addRow("Edited region map", self.target_map)
        form.addRow(self.maps_note)
        form.addRow("Model", self.model)
        form.addRow("Apply to", self.apply_to)
        form.addRow("Solve on", self.solve_on)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.preview_label)
        layout.addLayout(toggles)
        layout.addWidget(buttons)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self._start_preview)
        self.job = None
        for widget in (self.exemplar, self.source, self.exemplar_map, self.target_map, self.model, self.solve_on):
            widget.currentIndexChanged.connect(self._changed)
        self.by_selection.toggled.connect(self._changed)
        self._changed()

    @staticmethod
    def _combo(items, index):
        box = QComboBox()
        box.addItems(items)
        if items:
            box.setCurrentIndex(max(0, index))
        return box

    @staticmethod
    def _index(nodes, node):
        return next((i for i, n in enumerate(nodes) if node is not None and n == node), 0)

    @staticmethod
    def _mask_label(mask):
        return f"{host.node_name(mask)} (on {host.node_name(mask.parentNode())})"

    def edit(self):
        """The choices as an adapter.Edit."""
        pick = lambda nodes, box: nodes[box.currentIndex()] if nodes and box.currentIndex() >= 0 else None  # noqa: E731
        chosen = self.model.currentIndex()
        model = self.models[chosen][0] if 0 <= chosen < len(self.models) else None
        apply_to = adapter.APPLY_TO[max(0, self.apply_to.currentIndex())][0]
        edit = adapter.Edit(exemplar=pick(self.layers, self.exemplar), model=model, apply_to=apply_to,
                            selected=host.selected_layers() if apply_to == "selected" else [],
                            solve_on_visible=self.solve_on.currentIndex() == 1)
        if self.by_maps.isChecked():
            edit.exemplar_map, edit.target_map = pick(self.layers, self.exemplar_map), pick(self.layers, self.target_map)
        else:
            edit.source = pick(self.masks, self.source)
        return edit

    def _changed(self, *_):
        maps = self.by_maps.isChecked()
        self.source.setEnabled(not maps)
        self.exemplar_map.setEnabled(maps)
        self.target_map.setEnabled(maps)
        self.maps_note.setVisible(maps and bool(self.maps_note.text()))
        self.timer.start(PREVIEW_DELAY_MS)

    def _start_preview(self):
        if self.job is not None and self.job.isRunning():
            self.timer.start(PREVIEW_DELAY_MS)  # one preview at a time; try again shortly
            return
        try:
            request = adapter.request_for(self.document, self.edit())  # read here: Krita's thread
        except adapter.PluginError as problem:
            self.preview_label.setText(str(problem))
            self._test_hooks()
            return
        self.preview_label.setText("Computing the preview...")
        self.job = Job(lambda progress: adapter.preview(self.client, request))
        self.job.succeeded.connect(self._show_preview)
        self.job.failed.connect(lambda error: self.preview_label.setText(str(error)))
        self.job.finished.connect(self._test_hooks)
        self.job.start()

    def _show_preview(self, preview):
        self.preview_shown = preview
        self._render_preview()

    def _render_preview(self, *_):
        """The preview as the toggles say: after or before, whole or zoomed to the edit."""
        if self.preview_shown is None:
            return
        image = self.preview_shown.before if self.show_before.isChecked() else self.preview_shown.after
        picture = QImage(bytes(image.data), image.width, image.height, image.width * 4, RGBA8888).copy()
        part = self.preview_shown.zoomed_part() if self.zoom.isChecked() else None
        if part is not None:
            picture = picture.copy(*part)
        pixmap = QPixmap.fromImage(picture).scaled(self.preview_label.width(), self.preview_label.height(), KEEP_ASPECT)
        self.preview_label.setPixmap(pixmap)

    def _test_hooks(self):
        """Tests only: save a screenshot (and one with the preview zoomed to the edit, before it),
        and accept the defaults once the first preview is in."""
        screenshot = os.environ.get("SIMNET_TEST_DIALOG_SCREENSHOT")
        if screenshot:
            self.grab().save(screenshot)
            if self.preview_shown is not None:
                self.zoom.setChecked(True)
                self.show_before.setChecked(True)
                self.grab().save(screenshot.replace(".png", "-zoomed-before.png"))
                self.zoom.setChecked(False)
                self.show_before.setChecked(False)
        if os.environ.get("SIMNET_TEST_ACCEPT_DIALOG"):
            self.accept()

    def done(self, result):
        self.timer.stop()
        if self.job is not None:
            self.job.wait()
        super().done(result)
