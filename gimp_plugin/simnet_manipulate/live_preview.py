"""The dialog's live preview: a low-resolution result under the procedure's arguments that
follows every change, with a before/after toggle and a zoom to the edited area.

The request is read from the image on GIMP's thread (the only one that may call GIMP), the
engine answers on a worker thread, and the picture is shown from GLib's main loop again. One
preview runs at a time; a change while it runs starts the next one when it is done.
"""

import os
import threading

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
import adapter  # noqa: E402
from gi.repository import GdkPixbuf, GLib, Gtk  # noqa: E402

DELAY_MS = 300
SIDE = 384


class LivePreview:
    def __init__(self, dialog, config, read_request):
        """`read_request()` reads the request from the dialog's arguments (or raises
        adapter.PluginError with what to fix)."""
        self.read_request = read_request
        self.client = None
        self.shown = None  # the last link.client.Preview
        self.pending = None
        self.running = False
        self.closed = False
        self.picture = Gtk.Image()
        self.picture.set_size_request(SIDE, SIDE * 2 // 3)
        self.status = Gtk.Label(label="Preview")
        self.status.set_line_wrap(True)
        self.before = Gtk.CheckButton.new_with_mnemonic("Show the painting _before the edit")
        self.zoom = Gtk.CheckButton.new_with_mnemonic("_Zoom to the edit")
        toggles = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=12)
        toggles.pack_start(self.before, False, False, 0)
        toggles.pack_start(self.zoom, False, False, 0)
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6)
        box.pack_start(self.picture, True, True, 0)
        box.pack_start(self.status, False, False, 0)
        box.pack_start(toggles, False, False, 0)
        dialog.get_content_area().pack_start(box, True, True, 6)
        box.show_all()
        for toggle in (self.before, self.zoom):
            toggle.connect("toggled", self._render)
        config.connect("notify", self._changed)
        self._changed()

    def _changed(self, *_):
        if self.pending is not None:
            GLib.source_remove(self.pending)
        self.pending = GLib.timeout_add(DELAY_MS, self._start)

    def _start(self):
        self.pending = None
        if self.running:  # one preview at a time; this one follows
            self.pending = GLib.timeout_add(DELAY_MS, self._start)
            return False
        try:
            request = self.read_request()
        except adapter.PluginError as problem:
            self.status.set_text(str(problem))
            return False
        self.running = True
        self.status.set_text("Computing the preview...")
        threading.Thread(target=self._compute, args=(request,), daemon=True).start()
        return False

    def _compute(self, request):
        try:
            if self.client is None:
                self.client = adapter.engine_client()
            GLib.idle_add(self._show, adapter.preview(self.client, request, SIDE), None)
        except (adapter.PluginError, OSError) as problem:
            GLib.idle_add(self._show, None, str(problem))

    def _show(self, preview, problem):
        self.running = False
        if self.closed:  # the dialog is gone
            return False
        if problem is not None:
            self.status.set_text(problem)
            return False
        self.shown = preview
        self.status.set_text("")
        self._render()
        shown_file = os.environ.get("SIMNET_TEST_PREVIEW_FILE")  # tests only: the first preview is in
        if shown_file:
            with open(shown_file, "w") as note:
                note.write(f"{preview.after.width}x{preview.after.height}")
        return False

    def _render(self, *_):
        """The preview as the toggles say: after or before, whole or zoomed to the edit."""
        if self.shown is None:
            return
        image = self.shown.before if self.before.get_active() else self.shown.after
        pixbuf = GdkPixbuf.Pixbuf.new_from_bytes(GLib.Bytes.new(bytes(image.data)), GdkPixbuf.Colorspace.RGB, True, 8,
                                                 image.width, image.height, image.width * 4)
        part = self.shown.zoomed_part() if self.zoom.get_active() else None
        if part is not None:
            pixbuf = pixbuf.new_subpixbuf(*part)
        scale = min(SIDE / pixbuf.get_width(), SIDE * 2 / 3 / pixbuf.get_height())
        width, height = max(1, round(pixbuf.get_width() * scale)), max(1, round(pixbuf.get_height() * scale))
        self.picture.set_from_pixbuf(pixbuf.scale_simple(width, height, GdkPixbuf.InterpType.BILINEAR))

    def close(self):
        self.closed = True
        if self.pending is not None:
            GLib.source_remove(self.pending)
        if self.client is not None:
            self.client.close()
