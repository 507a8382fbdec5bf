"""Talk to the SIM-Net engine worker (vendored into both plug-ins with engine/link/protocol.py).

Standard library only (Krita's and GIMP's Pythons have no numpy). It starts `simnet worker` with
the configured interpreter, speaks the framed protocol (engine/link/protocol.py) over the worker's stdin/stdout (no socket,
no port), and turns every failure into `EngineError`, whose `message` is written for the artist.
"""

from __future__ import annotations

import itertools
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .protocol import (
    SHARED_DIR_VARIABLE,
    Buffer,
    FrameError,
    SharedFolder,
    place_in_shared,
    read_frame,
    write_frame,
)


class EngineError(Exception):
    """Anything that went wrong: `message` for the artist, `code` for programs, `details` for a
    bug report."""

    def __init__(self, code: str, message: str, details: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


BASELINE_MODEL = "moments"


def model_choices(names: list[str], default: str | None) -> list[tuple[str, str]]:
    """The engine's models as the plug-ins offer them: (name, what the artist reads), the
    default first. "Learned (SIM-Net, default)" and "Fast baseline" rather than file names."""

    def label(name: str) -> str:
        if name == BASELINE_MODEL:
            return "Fast baseline (default)" if name == default else "Fast baseline"
        return "Learned (SIM-Net, default)" if name == default else f"Learned ({name})"

    ordered = sorted(names, key=lambda name: (name != default, name == BASELINE_MODEL, name))
    return [(name, label(name)) for name in ordered]


class PluginError(Exception):
    """A problem with the artist's request, which they can fix; the message says how. Nothing
    was changed. Raised by the plug-ins for what they check, and by `job_errors`."""


@contextmanager
def job_errors() -> Iterator[None]:
    """An EngineError while the engine works on a request, as a PluginError: its message is
    written for the artist (an engine that cannot be started stays an EngineError)."""
    try:
        yield
    except EngineError as error:
        raise PluginError(error.message) from error


@dataclass
class Image:
    """Pixels as the hosts hold them: C-order rows of `channels` interleaved samples."""

    data: bytes  # or any bytes-like object
    width: int
    height: int
    channels: int
    dtype: str = "uint8"

    def buffer(self) -> Buffer:
        return Buffer(self.data, (self.height, self.width, self.channels), self.dtype)

    @classmethod
    def from_buffer(cls, buffer: Buffer) -> Image:
        height, width, channels = buffer.shape
        return cls(buffer.data, width, height, channels, buffer.dtype)


@dataclass(frozen=True)
class Preview:
    """A preview (`after`), the painting at the same size (`before`), and the box of the edit in
    them (x0, y0, x1, y1), or None where nothing changes."""

    after: Image
    before: Image
    edit_box: tuple | None

    def zoomed_part(self, margin: float = 0.15) -> tuple[int, int, int, int] | None:
        """The part (x, y, width, height) to show when zoomed to the edit: its box grown by
        `margin` of its size on each side, widened to the preview's proportions (no bars when
        scaled to fit), inside the preview. None where nothing changes."""
        if self.edit_box is None:
            return None
        width, height = self.after.width, self.after.height
        x0, y0, x1, y1 = self.edit_box
        grow = margin * max(x1 - x0, y1 - y0)
        w, h = x1 - x0 + 2 * grow, y1 - y0 + 2 * grow
        if w / h < width / height:
            w = h * width / height
        else:
            h = w * height / width
        w, h = min(w, width), min(h, height)
        left = min(max((x0 + x1 - w) / 2, 0), width - w)
        top = min(max((y0 + y1 - h) / 2, 0), height - h)
        return round(left), round(top), max(1, round(w)), max(1, round(h))


def mask_buffer(data: bytes, width: int, height: int, dtype: str = "uint8") -> Buffer:
    """A selection mask (uint8 0..255 or float32 0..1), one sample per pixel."""
    return Buffer(data, (height, width), dtype)


def labels_buffer(data: bytes, width: int, height: int, dtype: str = "int32") -> Buffer:
    """A region map: one region id per pixel, int32, or uint8/uint16 when the ids fit (a
    quarter or half of the bytes through the pipe)."""
    return Buffer(data, (height, width), dtype)


_DEAD = object()


class _NeverAnswered(Exception):
    """The worker died before it sent anything for the request."""

_CRASH_MESSAGE = "The SIM-Net engine stopped unexpectedly. Try again: a fresh engine will be started."


class Client:
    """One worker process, started on first use and again after a crash.

    `command` is the worker's command line, e.g. [python, "-m", "engine", "worker"]. Calls may
    come from several threads; each blocks until its reply. `shared_memory` False keeps every
    buffer in the pipes (for comparison; shared memory is used where the system has it).
    """

    def __init__(self, command: list[str], env: dict | None = None, shared_memory: bool = True):
        self.command = list(command)
        self.env = env
        self.shared_memory = shared_memory
        self._process = None
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._pending: dict[int, tuple] = {}  # request id -> (the worker it went to, its replies)
        self._ids = itertools.count(1)
        self._log = None
        self._shared = None  # this client's shared-memory folder, once a worker accepted it
        self._shared_offer = None
        self.last_seconds = None  # the engine's own time for the last manipulate/preview
        self.last_edit: int | None = None  # the edit the last manipulate(keep_edit=True) kept, for replay

    # -- process management

    def _ensure_started(self):
        with self._state_lock:
            if self._process is not None and self._process.poll() is None:
                return self._process
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 (the worker's stderr, kept for crash reports)
            if self._shared_offer is None:
                self._shared_offer = (self.shared_memory and SharedFolder.create()) or False
            elif self._shared_offer:
                self._shared_offer.clear()  # what a stopped worker left
            self._shared = None  # until this worker says it accepts the folder
            env = dict(os.environ if self.env is None else self.env)
            if self._shared_offer:
                env[SHARED_DIR_VARIABLE] = self._shared_offer.path
            try:
                self._process = subprocess.Popen(
                    self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                    env=env, bufsize=0,
                )
            except OSError as error:
                raise EngineError(
                    "worker_missing",
                    "The SIM-Net engine could not be started. Reinstall the plug-in with "
                    "`simnet install-plugin`, or check the interpreter path in its settings.",
                    f"{self.command}: {error}",
                ) from None
            _widen_pipes(self._process)
            threading.Thread(target=self._read_replies, args=(self._process,), daemon=True).start()
            if self._shared_offer and self._worker_accepts_shared_memory(self._process):
                self._shared = self._shared_offer
            return self._process

    def _worker_accepts_shared_memory(self, process) -> bool:
        """Ask a new worker (`hello`) whether it took the shared folder."""
        request_id = next(self._ids)
        replies: queue.Queue = queue.Queue()
        self._pending[request_id] = (process, replies)
        try:
            write_frame(process.stdin, self._write_lock, {"id": request_id, "op": "hello", "params": {}})
            reply = replies.get()
        except (OSError, ValueError):
            return False  # the request that follows reports the crash
        finally:
            self._pending.pop(request_id, None)
        return reply is not _DEAD and reply.header.get("params", {}).get("shared_memory") is True

    def _read_replies(self, process) -> None:
        stream = process.stdout
        shared = self._shared_offer or None
        try:
            while True:
                frame = read_frame(stream, max_buffer_bytes=1 << 40, shared=shared)
                for buffer in frame.buffers.values():
                    if buffer.file and shared is not None:  # mapped: the name is no longer needed
                        shared.remove(buffer.file)
                request_id = frame.header.get("id")
                waiting = self._pending.get(request_id) if isinstance(request_id, int) else None
                if waiting is not None and waiting[0] is process:
                    waiting[1].put(frame)
        except (EOFError, FrameError, OSError, ValueError):
            pass
        process.wait()
        for owner, waiting in list(self._pending.values()):
            if owner is process:  # a request sent to a worker started since is not this one's
                waiting.put(_DEAD)

    def _crash_details(self) -> str:
        code = self._process.poll() if self._process else None
        tail = b""
        if self._log is not None:
            try:
                self._log.seek(0, os.SEEK_END)
                size = self._log.tell()
                self._log.seek(max(0, size - 2000))
                tail = self._log.read()
            except (OSError, ValueError):
                pass
        return f"exit code {code}; last output: {tail.decode(errors='replace')}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def close(self) -> None:
        """Ask the worker to stop, make sure it does, and remove the shared folder (also when
        the worker was already gone)."""
        process = self._process
        if process is not None and process.poll() is None:
            try:
                self._request("shutdown", {}, None, None, None, retry=False)
            except EngineError:
                pass
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._shared_offer:
            self._shared_offer.destroy()
        self._shared = self._shared_offer = None

    # -- requests

    def _request(self, op, params, buffers, progress, on_id, retry: bool = True):
        """Send one request and wait for its result. A request that could not be written, or
        whose worker died before answering it at all, is sent once more to a fresh worker when
        `retry`: a worker killed just before the call (the pipe may still take the bytes) never
        saw it, and every operation but shutdown and cancel only computes, so a second try is safe."""
        for attempt in (1, 2):
            process = self._ensure_started()
            request_id = next(self._ids)
            replies: queue.Queue = queue.Queue()
            self._pending[request_id] = (process, replies)
            header = {"id": request_id, "op": op, "params": params}
            shared = self._shared
            placed = buffers
            if shared is not None:
                header["shared"] = True
                placed = place_in_shared(shared, f"q{request_id}", buffers)
            try:
                if on_id is not None:
                    on_id(request_id)
                try:
                    write_frame(process.stdin, self._write_lock, header, placed)
                except (OSError, ValueError):
                    if retry and attempt == 1:
                        self._stop(process)
                        continue
                    raise EngineError("worker_crashed", _CRASH_MESSAGE, self._crash_details()) from None
                try:
                    return self._wait_for_result(replies, progress)
                except _NeverAnswered:
                    if retry and attempt == 1:
                        self._stop(process)
                        continue
                    raise EngineError("worker_crashed", _CRASH_MESSAGE, self._crash_details()) from None
            finally:
                self._pending.pop(request_id, None)
                if shared is not None:
                    for buffer in (placed or {}).values():
                        if buffer.file:  # the worker has read it, or is gone
                            shared.remove(buffer.file)
                    shared.clear(prefix=f"r{request_id}-")  # a reply file the worker made but never sent
        raise AssertionError("unreachable")

    def _wait_for_result(self, replies: queue.Queue, progress):
        answered = False
        while True:
            reply = replies.get()
            if reply is _DEAD:
                if not answered:
                    raise _NeverAnswered()
                raise EngineError("worker_crashed", _CRASH_MESSAGE, self._crash_details())
            answered = True
            kind = reply.header.get("type")
            if kind == "progress":
                if progress is not None:
                    progress(reply.header.get("stage", ""), float(reply.header.get("fraction", 0.0)))
            elif kind == "error":
                raise EngineError(reply.header.get("code", "error"), reply.header.get("message", "error"),
                                  reply.header.get("details", ""))
            else:
                return reply

    def _stop(self, process) -> None:
        """Make sure a worker that can no longer be written to is gone, so the next call starts
        a new one."""
        try:
            process.kill()
        except OSError:
            pass
        process.wait()

    def hello(self) -> dict:
        """Versions, models, the compute provider and the worker's limits."""
        return self._request("hello", {}, None, None, None).header.get("params", {})

    def segment(self, image: Image, max_regions: int | None = None, channel_order: str = "rgba",
                progress=None) -> tuple[Buffer, Image]:
        """Automatic region map of `image`: labels int32 (H, W), and the map as a flat-colour
        picture in `image`'s own layout (dtype, channel count, channel order; opaque)."""
        params = {"max_regions": max_regions, "channel_order": channel_order}
        reply = self._request("segment", params, {"image": image.buffer()}, progress, None)
        return reply.buffers["labels"], Image.from_buffer(reply.buffers["colours"])

    def manipulate(self, exemplar: Image, *, source_mask: Buffer | None = None, target_mask: Buffer | None = None,
                   exemplar_regions: Buffer | None = None, target_regions: Buffer | None = None,
                   exemplar_map: Image | None = None, target_map: Image | None = None,
                   model: str | None = None, channel_order: str = "rgba", progress=None, on_id=None,
                   keep_edit: bool = False) -> Image:
        """The manipulated image at full size, same layout and dtype as `exemplar`. Give both
        masks, both region-id maps, or both painted colour maps (Images in the exemplar's
        layout). `progress(stage, fraction)` is called from this thread; `on_id(request_id)`
        tells the id to pass to `cancel` from another thread. `keep_edit`: the engine keeps the
        solved edit, and `last_edit` names it for `replay`."""
        edit = {"source_mask": source_mask, "target_mask": target_mask, "exemplar_regions": exemplar_regions,
                "target_regions": target_regions, "exemplar_map": exemplar_map, "target_map": target_map}
        params = {"keep_edit": True} if keep_edit else {}
        return self._manipulate("manipulate", params, exemplar, edit, model, channel_order, progress, on_id)

    def manipulate_layers(self, exemplar: Image, layers: list[Image], *, model: str | None = None,
                          channel_order: str = "rgba", progress=None, on_id=None, **edit) -> list[Image]:
        """Solve the edit (as `manipulate` takes it) once on `exemplar`, then replay it on each of
        `layers` (each the exemplar's size, in its layout): results in their order, every layer
        moved alike. `progress(stage, fraction)` sees the solve, then "layer i of n"."""
        self.manipulate(exemplar, model=model, channel_order=channel_order, progress=progress, on_id=on_id,
                        keep_edit=True, **edit)
        kept = self.last_edit
        if kept is None:  # an engine older than the replay operation
            raise EngineError("unknown_op", "The engine cannot replay an edit on other layers: update the plug-in and "
                              "the engine together.")
        results = []
        for number, layer in enumerate(layers, 1):
            if progress is not None:
                progress(f"layer {number} of {len(layers)}", (number - 1) / len(layers))
            results.append(self.replay(kept, layer, channel_order=channel_order, on_id=on_id))
        return results

    def replay(self, edit: int, layer: Image, channel_order: str = "rgba", progress=None, on_id=None) -> Image:
        """The edit kept by `manipulate(keep_edit=True)` (its `last_edit`) on one more layer of
        the same size: the same move, in the layer's own layout and dtype."""
        reply = self._request("replay", {"edit": edit, "channel_order": channel_order}, {"image": layer.buffer()},
                              progress, on_id, retry=False)
        return Image.from_buffer(reply.buffers["image"])

    def preview(self, exemplar: Image, max_side: int = 512, for_display: bool = False, *, model: str | None = None,
                channel_order: str = "rgba", progress=None, on_id=None, **edit) -> Image:
        """As `manipulate`, computed on a copy at most `max_side` pixels on its long side;
        `for_display` asks for 8-bit RGBA whatever the exemplar's depth."""
        return self.compare_preview(exemplar, max_side, for_display, model=model, channel_order=channel_order,
                                    progress=progress, on_id=on_id, **edit).after

    def compare_preview(self, exemplar: Image, max_side: int = 512, for_display: bool = False, *,
                        model: str | None = None, channel_order: str = "rgba", progress=None, on_id=None,
                        **edit) -> Preview:
        """`preview`, with the painting at the same size beside it and the box of the edit in it,
        for a before/after toggle and a zoom to the edit."""
        params = {"max_side": max_side, "for_display": for_display}
        reply = self._manipulate_reply("preview", params, exemplar, edit, model, channel_order, progress, on_id)
        box = reply.header.get("params", {}).get("edit_box")
        return Preview(Image.from_buffer(reply.buffers["image"]), Image.from_buffer(reply.buffers["before"]),
                       tuple(box) if box is not None else None)

    def _manipulate(self, op, params, exemplar, edit, model, channel_order, progress, on_id) -> Image:
        reply = self._manipulate_reply(op, params, exemplar, edit, model, channel_order, progress, on_id)
        return Image.from_buffer(reply.buffers["image"])

    def _manipulate_reply(self, op, params, exemplar, edit, model, channel_order, progress, on_id):
        buffers = {"exemplar": exemplar.buffer()}
        for name, value in edit.items():
            if value is not None:
                buffers[name] = value.buffer() if isinstance(value, Image) else value
        params = dict(params, channel_order=channel_order)
        if model:
            params["model"] = model
        reply = self._request(op, params, buffers, progress, on_id)
        self.last_seconds = reply.header.get("params", {}).get("seconds")
        self.last_edit = reply.header.get("params", {}).get("edit")
        return reply

    def cancel(self, request_id: int) -> None:
        """Stop request `request_id`: its call raises EngineError with code "cancelled"."""
        if self._process is not None and self._process.poll() is None:
            try:
                self._request("cancel", {"request": request_id}, None, None, None, retry=False)
            except EngineError:
                pass


def _widen_pipes(process) -> None:
    """Linux pipes hold 64 KiB: at 1 MiB an image crosses in far fewer system calls."""
    try:
        import fcntl

        for stream in (process.stdin, process.stdout):
            fcntl.fcntl(stream.fileno(), 1031, 1 << 20)  # F_SETPIPE_SZ
    except (ImportError, OSError):
        pass  # not Linux, or the system caps pipe sizes lower: still correct, a little slower


def worker_command(python: str | None = None) -> list[str]:
    """The command line that starts a worker with `python` (default: this interpreter)."""
    return [python or sys.executable, "-m", "engine", "worker"]
