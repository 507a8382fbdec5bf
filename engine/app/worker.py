"""`simnet worker`: the engine behind the plug-ins, reached through its stdin and stdout only.

It speaks the framed protocol of engine.client (the one stdlib-only module the plug-ins vendor).
A reader thread takes frames off stdin as they come, so a `cancel` reaches a running job at once;
jobs run one at a time on the main thread, in arrival order. Every request is validated before
any work (protocol version, header and buffer sizes, dtypes and shapes, image and mask sizes,
the pixel limit, finite floats); a malformed or hostile frame gets an `error` reply and the worker
keeps serving. The header's fields are checked in one place (`request_fields`) before any use,
and any failure while handling a request becomes an `error` reply. A frame whose bytes stop
coming is given up after `frame_timeout` seconds (the reader then looks for the next frame), so
no frame can hold the worker. Nothing from a request is ever executed or unpickled: headers are
JSON, buffers are raw numbers. Large buffers may come and go as files in the client's private
shared-memory folder (engine.client.SharedFolder): only plain names inside that folder are
opened, never followed links, and only that folder is ever written. The worker exits on
`shutdown`, at the end of its input, when the client is gone, or after `idle_timeout` seconds
without a request; should its reader ever fail, it exits with status 3 and a line on stderr, and
the client starts a new one.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass
from typing import BinaryIO

import cv2
import numpy as np

from ..edit import Edit, from_colour_maps, from_masks
from ..errors import InputError
from ..io.imageio import DEFAULT_MAX_PIXELS, to_rgb8
from ..io.pixels import (
    FULL_SCALE,
    SAMPLE_TYPES,
    from_samples,
    rgb_channels,
    swap_red_blue,
    to_samples,
)
from ..link.protocol import (
    MAX_HEADER,
    PROTOCOL,
    SHARED_DIR_VARIABLE,
    SHARED_MIN_BYTES,
    Buffer,
    FrameError,
    PipeReader,
    SharedFolder,
    place_in_shared,
    read_frame,
    resync,
    write_frame,
)
from ..masks import bounding_box
from ..models import default_model, model_names
from ..pipeline import run
from ..regions import colour_map
from ..replay import SolvedEdit, apply
from .memory import keep_freed_memory, release_freed_memory

DEFAULT_IDLE_TIMEOUT = 600.0
# Seconds the rest of a frame may take once its first bytes are in. A client writes a frame in one
# go, so even a 64 MB image through the pipe takes well under a second.
DEFAULT_FRAME_TIMEOUT = 30.0
READER_FAILED_STATUS = 3
MAX_OP_LENGTH = 64
MAX_REQUEST_ID = (1 << 63) - 1
MAX_MODEL_NAME = 1024
REMEMBERED_CANCELS = 1024
# Error texts are cut to these lengths so that a reply always fits in a frame.
MAX_MESSAGE, MAX_DETAILS = 2000, 16000
# Seconds without a request after which the worker returns freed memory to the system (jobs in
# quick succession, like a dialog's previews, reuse it instead).
RELEASE_AFTER = 2.0
PROGRESS_INTERVAL = 0.1  # seconds between progress replies of one stage


class Cancelled(Exception):
    pass


class BadRequest(Exception):
    """A request whose header or parameters break the protocol's schema."""

    def __init__(self, message: str, request_id: int | None = None):
        super().__init__(message)
        self.request_id = request_id


class ClientGone(Exception):
    """The client's end of the pipe is closed: nobody is left to answer."""


@dataclass(frozen=True)
class Request:
    id: int
    op: str
    params: dict
    shared: bool


def request_fields(header: dict) -> Request:
    """The request's fields, each of its declared type, or BadRequest (with the id when the id
    itself is sound, so that the error answers that request)."""
    request_id = header.get("id")
    if type(request_id) is not int or not 0 <= request_id <= MAX_REQUEST_ID:
        raise BadRequest(f"the request id must be an integer from 0 to {MAX_REQUEST_ID}")
    op = header.get("op")
    if type(op) is not str or not 0 < len(op) <= MAX_OP_LENGTH:
        raise BadRequest(f"the operation must be a name of 1 to {MAX_OP_LENGTH} characters", request_id)
    params = header.get("params", {})
    if type(params) is not dict:
        raise BadRequest("the request's parameters are not an object", request_id)
    shared = header.get("shared", False)
    if type(shared) is not bool:
        raise BadRequest("'shared' must be true or false", request_id)
    return Request(request_id, op, params, shared)


READER_FAILED = object()  # put on the job queue when the reader thread fails


class Worker:
    def __init__(self, stdin, stdout, idle_timeout: float = DEFAULT_IDLE_TIMEOUT, max_pixels: int = DEFAULT_MAX_PIXELS,
                 shared: SharedFolder | None = None):
        self.stdin, self.stdout = stdin, stdout
        self.shared = shared
        self.shared_replies: set[int] = set()  # requests that asked for their buffers in shared memory
        self.idle_timeout = idle_timeout
        self.max_pixels = max_pixels
        # an RGBA float32 exemplar, two int32 maps and change, at the pixel limit
        self.max_buffer_bytes = max_pixels * 28
        self.write_lock = threading.Lock()
        self.jobs: queue.Queue = queue.Queue()
        self.cancelled: set[int] = set()
        self._cancel_order: deque[int] = deque()  # so that hostile cancels cannot grow the set forever
        # the last edit solved with keep_edit, by the id of its request: every layer of a stack
        # is then replayed from it (one held at a time: at 8192 px an edit can be a few hundred MB)
        self.kept_edit: tuple[int, SolvedEdit] | None = None

    # -- replies

    def reply(self, request_id, kind: str, buffers: dict | None = None, **fields) -> None:
        if buffers and request_id in self.shared_replies:
            buffers = place_in_shared(self.shared, f"r{request_id}", buffers)  # the client removes them
        try:
            try:
                write_frame(self.stdout, self.write_lock, {"id": request_id, "type": kind, **fields}, buffers)
            except FrameError:  # a header over the frame limit: say so in one that fits
                write_frame(self.stdout, self.write_lock, {
                    "id": request_id, "type": "error", "code": "internal", "details": "",
                    "message": f"The engine's {kind} reply was too large to send (over {MAX_HEADER} bytes of header)."})
        except (OSError, ValueError):  # the pipe is closed (ValueError: closed file)
            raise ClientGone() from None

    def result_buffer(self, request_id, name: str, shape: tuple, dtype: str) -> tuple[np.ndarray, Buffer]:
        """An array to write a reply buffer into, and the Buffer that sends it: straight into a
        shared-memory file when this request's reply goes that way (no copy), else memory."""
        nbytes = int(np.prod(shape)) * np.dtype(SAMPLE_TYPES[dtype]).itemsize
        if request_id in self.shared_replies and nbytes >= SHARED_MIN_BYTES:
            file = f"r{request_id}-{name}.buf"
            mapping = self.shared.create_mapped(file, nbytes) if self.shared is not None else None
            if mapping is not None:
                return np.frombuffer(mapping, SAMPLE_TYPES[dtype]).reshape(shape), Buffer(mapping, shape, dtype, file)
        array = np.empty(shape, SAMPLE_TYPES[dtype])
        return array, Buffer(array, shape, dtype)

    def error(self, request_id, code: str, message: str, details: str = "") -> None:
        self.reply(request_id, "error", code=code, message=message[:MAX_MESSAGE], details=details[:MAX_DETAILS])

    # -- reading

    def read_loop(self) -> None:
        """Reader thread: frames to the job queue; cancel handled here, at once."""
        magic_read = False
        try:
            while True:
                try:
                    frame = read_frame(self.stdin, self.max_buffer_bytes, magic_read, self.shared)
                except EOFError:
                    break
                except FrameError as problem:
                    magic_read = False
                    message = ("The plug-in and the engine are different versions: run `simnet install-plugin` again."
                               if problem.code == "protocol_version" else "The plug-in sent a request the engine cannot read.")
                    self.error(problem.request_id, problem.code, message, str(problem))
                    if problem.resync:
                        try:
                            resync(self.stdin)
                        except EOFError:
                            break
                        magic_read = True
                    continue
                magic_read = False
                self.accept(frame)
        except ClientGone:
            pass
        except Exception as problem:  # a reader that failed has lost its place in the stream
            print(f"simnet worker: stopped reading requests: {type(problem).__name__}: {problem}", file=sys.stderr)
            self.jobs.put(READER_FAILED)
            return
        self.jobs.put(None)

    def accept(self, frame) -> None:
        """A frame read whole: checked, then answered (cancel) or queued."""
        try:
            request = request_fields(frame.header)
        except BadRequest as problem:  # answered in turn, after the requests queued before it
            self.jobs.put((problem, {}))
            return
        if request.shared and self.shared is not None:
            self.shared_replies.add(request.id)
        if request.op != "cancel":
            self.jobs.put((request, frame.buffers))
            return
        target = request.params.get("request")
        if type(target) is not int:
            self.error(request.id, "bad_request", "The plug-in sent a request the engine cannot read.",
                       "cancel needs the integer id of a request")
            return
        self.cancelled.add(target)
        self._cancel_order.append(target)
        if len(self._cancel_order) > REMEMBERED_CANCELS:
            self.cancelled.discard(self._cancel_order.popleft())
        self.reply(request.id, "result", params={"cancelled": target})

    # -- serving

    def serve(self) -> int:
        threading.Thread(target=self.read_loop, daemon=True).start()
        last_job, released = time.monotonic(), True
        while True:
            idle = time.monotonic() - last_job
            wait = RELEASE_AFTER - idle if not released else self.idle_timeout - idle
            try:
                item = self.jobs.get(timeout=max(0.0, wait))
            except queue.Empty:
                if not released:  # a pause: give the job's memory back (engine.memory)
                    release_freed_memory()
                    released = True
                    continue
                return 0  # idle: the client starts a new worker when it needs one
            if item is None:
                return 0
            if item is READER_FAILED:
                return READER_FAILED_STATUS
            try:
                if not self.handle(*item):
                    return 0
            except ClientGone:
                return 0
            last_job, released = time.monotonic(), False

    def handle(self, request: Request | BadRequest, buffers: dict) -> bool:
        """Answer one request; False after `shutdown`. Every failure becomes an error reply."""
        if isinstance(request, BadRequest):
            self.error(request.request_id, "bad_request", "The plug-in sent a request the engine cannot read.", str(request))
            return True
        handlers = {"hello": self.hello, "segment": self.segment, "manipulate": self.manipulate,
                    "preview": self.preview, "replay": self.replay}
        try:
            if request.id in self.cancelled:
                raise Cancelled()
            if request.op == "shutdown":
                self.reply(request.id, "result", params={})
                return False
            if request.op not in handlers:
                self.error(request.id, "unknown_op", "The plug-in asked for something this engine cannot do; "
                           "update the plug-in and the engine together.", f"unknown operation {request.op!r}")
                return True
            handlers[request.op](request.id, request.params, buffers)
        except Cancelled:
            self.error(request.id, "cancelled", "Cancelled.")
        except BadRequest as problem:
            self.error(request.id, "bad_request", "The plug-in sent a request the engine cannot read.", str(problem))
        except InputError as problem:
            self.error(request.id, "invalid_input", str(problem)[:1].upper() + str(problem)[1:] + ".")
        except MemoryError:
            self.error(request.id, "out_of_memory", "The engine ran out of memory: try a smaller image "
                       "or fewer regions, or close other programs.")
        except ClientGone:
            raise
        except Exception as problem:
            self.error(request.id, "internal", "The engine failed. Please report this with the details.",
                       f"{type(problem).__name__}: {problem}\n{traceback.format_exc()}")
        finally:
            self.cancelled.discard(request.id)
            self.shared_replies.discard(request.id)
        return True

    def progress_for(self, request_id):
        last = {"stage": None, "time": 0.0}

        def report(stage: str, fraction: float) -> None:
            if request_id in self.cancelled:
                raise Cancelled()
            now = time.monotonic()
            if stage != last["stage"] or now - last["time"] >= PROGRESS_INTERVAL or fraction >= 1.0:
                last.update(stage=stage, time=now)
                self.reply(request_id, "progress", stage=stage, fraction=round(float(fraction), 4))

        return report

    # -- operations

    def hello(self, request_id, params, buffers) -> None:
        from .. import __version__

        self.reply(request_id, "result", params={
            "protocol": PROTOCOL, "engine": __version__, "models": model_names(), "default_model": default_model()[0],
            "provider": _providers(), "max_pixels": self.max_pixels,
            "python": sys.version.split()[0], "pid": os.getpid(), "shared_memory": self.shared is not None,
        })

    def segment(self, request_id, params, buffers) -> None:
        from ..segment import segment

        pixels, dtype = self.image(buffers, "image", params)
        max_regions = params.get("max_regions")
        if max_regions is not None and (type(max_regions) is not int or max_regions < 1):
            raise InputError("max_regions must be a positive integer")
        progress = self.progress_for(request_id)
        progress("segment", 0.0)
        labels = segment(pixels, max_regions=max_regions)
        progress("segment", 1.0)
        # the map in the caller's own layout, opaque, so that it can become a layer as it is
        colours = colour_map(labels).astype(np.float32) / 255.0
        if pixels.shape[2] in (1, 2):
            colours = colours.mean(axis=2, keepdims=True)
        if pixels.shape[2] in (2, 4):
            colours = np.concatenate([colours, np.ones(labels.shape + (1,), np.float32)], axis=2)
        out = to_samples(colours, dtype, params.get("channel_order", "rgba"))
        self.reply(request_id, "result", buffers={
            "labels": Buffer(np.ascontiguousarray(labels, np.int32), labels.shape, "int32"),
            "colours": Buffer(out, out.shape, dtype),
        })

    def manipulate(self, request_id, params, buffers, max_side: int | None = None) -> None:
        model = params.get("model", default_model()[0])
        if not isinstance(model, str) or not 0 < len(model) <= MAX_MODEL_NAME or "\0" in model:
            raise BadRequest(f"the model must be a name or folder of 1 to {MAX_MODEL_NAME} characters")
        keep_edit = params.get("keep_edit", False)
        if type(keep_edit) is not bool or (keep_edit and max_side is not None):
            raise BadRequest("keep_edit must be true or false, and a preview keeps no edit")
        pixels, dtype = self.image(buffers, "exemplar", params)
        edit = self.edit(buffers, params, pixels.shape[:2])
        if max_side is not None:
            pixels, edit = shrink(pixels, edit, max_side)
        start = time.perf_counter()
        if keep_edit:
            self.kept_edit = None  # the old one's memory goes before the new one is made
        manipulation = run(pixels, edit, model=model, progress=self.progress_for(request_id), solved=keep_edit)
        result = manipulation.pixels
        seconds = time.perf_counter() - start
        extra: dict = {}
        images = {"image": result}
        if keep_edit and manipulation.solved is not None:
            self.kept_edit = (request_id, manipulation.solved)
            extra["edit"] = request_id
        if max_side is not None:  # a preview: the painting beside it, and where the edit is, to zoom to
            images["before"] = pixels
            box = bounding_box(manipulation.edit_zone)
            extra["edit_box"] = list(box) if box is not None else None
        self.send_images(request_id, images, dtype, params, {"seconds": round(seconds, 4), **extra})

    def replay(self, request_id, params, buffers) -> None:
        """The edit kept by an earlier `manipulate` (params: edit, its request id) on one more
        layer (buffer `image`), returned in the layer's own dtype and channel order."""
        wanted = params.get("edit")
        if type(wanted) is not int:
            raise BadRequest("replay needs 'edit': the id of the manipulate request that kept it")
        if self.kept_edit is None or self.kept_edit[0] != wanted:
            raise InputError("the engine no longer holds that edit (it keeps only the last one, and a restarted "
                             "engine none): run the manipulation again")
        pixels, dtype = self.image(buffers, "image", params)
        progress = self.progress_for(request_id)
        progress("replay", 0.0)
        start = time.perf_counter()
        result = apply(self.kept_edit[1], pixels)
        progress("replay", 1.0)
        self.send_images(request_id, {"image": result}, dtype, params, {"seconds": round(time.perf_counter() - start, 4)})

    def send_images(self, request_id, images: dict[str, np.ndarray], dtype: str, params: dict, fields: dict) -> None:
        """Reply with `images` (name -> (H, W, C) pixels) as buffers: in the request's dtype and
        channel order, or straight 8-bit RGBA when it asked `for_display`."""
        buffers = {}
        for name, pixels in images.items():
            order, kind = params.get("channel_order", "rgba"), dtype
            if params.get("for_display"):  # straight 8-bit RGBA whatever the document's depth, for previews
                rgb = rgb_channels(pixels)
                alpha = pixels[:, :, 3:] if pixels.shape[2] == 4 else np.ones(pixels.shape[:2] + (1,), np.float32)
                pixels, kind, order = np.concatenate([rgb, alpha], axis=2), "uint8", "rgba"
            out, buffers[name] = self.result_buffer(request_id, name, pixels.shape, kind)
            to_samples(pixels, kind, order, out)
        self.reply(request_id, "result", buffers=buffers, params=fields)

    def preview(self, request_id, params, buffers) -> None:
        max_side = params.get("max_side", 512)
        if type(max_side) is not int or not 16 <= max_side <= 4096:
            raise InputError("max_side must be an integer from 16 to 4096")
        self.manipulate(request_id, params, buffers, max_side)

    # -- validation

    def image(self, buffers, name: str, params) -> tuple[np.ndarray, str]:
        """The named image buffer as engine pixels, and its dtype."""
        if name not in buffers:
            raise InputError(f"the request has no '{name}' image")
        buffer = buffers[name]
        if len(buffer.shape) != 3 or buffer.shape[2] not in (1, 3, 4):
            raise InputError(f"the image must be height x width x 1, 3 or 4 channels, not {list(buffer.shape)}")
        if buffer.dtype not in FULL_SCALE:
            raise InputError(f"image samples must be uint8, uint16, float16 or float32, not {buffer.dtype}")
        height, width = buffer.shape[:2]
        if height < 1 or width < 1:
            raise InputError("the image is empty")
        if width * height > self.max_pixels:
            raise InputError(f"the image is {width}x{height} ({width * height} pixels), over the engine's limit of "
                             f"{self.max_pixels} pixels")
        samples = np.frombuffer(buffer.data, SAMPLE_TYPES[buffer.dtype]).reshape(buffer.shape)
        pixels = from_samples(samples)
        if buffer.dtype.startswith("float") and not np.isfinite(pixels).all():
            raise InputError("the image holds NaN or infinite values")
        order = params.get("channel_order", "rgba")
        if order not in ("rgba", "bgra"):
            raise InputError("channel_order must be 'rgba' or 'bgra'")
        if order == "bgra":
            pixels = swap_red_blue(pixels)
        return pixels, buffer.dtype

    def edit(self, buffers, params, shape) -> Edit:
        """The edit from two masks (checked against the exemplar's `shape`), two region-id maps,
        or two painted colour maps (images in the exemplar's layout)."""
        kinds = [
            {"source_mask", "target_mask"} & buffers.keys(),
            {"exemplar_regions", "target_regions"} & buffers.keys(),
            {"exemplar_map", "target_map"} & buffers.keys(),
        ]
        given = [kind for kind in kinds if kind]
        if len(given) != 1 or len(given[0]) != 2:
            raise InputError("give either a source and a target selection, or two region maps")
        masks, _, painted = kinds
        if masks:
            source, target = (self.mask(buffers[n], n) for n in ("source_mask", "target_mask"))
            return from_masks(shape, source, target)
        if painted:
            pictures = [to_rgb8(self.image(buffers, name, params)[0]) for name in ("exemplar_map", "target_map")]
            return from_colour_maps(*pictures)
        labels = []
        for name in ("exemplar_regions", "target_regions"):
            buffer = buffers[name]
            if buffer.dtype not in ("uint8", "uint16", "int32") or len(buffer.shape) != 2:
                raise InputError(f"{name.replace('_', ' ')} must be a height x width map of integer ids")
            labels.append(np.frombuffer(buffer.data, SAMPLE_TYPES[buffer.dtype]).reshape(buffer.shape))  # as sent: any integer type
        return Edit(labels[0], labels[1])

    @staticmethod
    def mask(buffer: Buffer, name: str) -> np.ndarray:
        what = name.replace("_", " ")
        if len(buffer.shape) != 2 or buffer.dtype not in ("uint8", "float32"):
            raise InputError(f"the {what} must be a height x width uint8 or float32 mask")
        mask = np.frombuffer(buffer.data, SAMPLE_TYPES[buffer.dtype]).reshape(buffer.shape)
        if buffer.dtype == "uint8":
            return mask.astype(np.float32) / 255.0
        if not np.isfinite(mask).all():
            raise InputError(f"the {what} holds NaN or infinite values")
        return mask


def _providers() -> str:
    """What the learned models can run on here (the one a model really uses: `simnet doctor`)."""
    try:
        import onnxruntime
    except ImportError:
        return "numpy and OpenCV only: ONNX Runtime is not installed"
    return f"ONNX Runtime {onnxruntime.__version__}: {', '.join(onnxruntime.get_available_providers())}"


def shrink(pixels: np.ndarray, edit: Edit, max_side: int) -> tuple[np.ndarray, Edit]:
    """A copy of the exemplar (area-averaged) and the edit at most `max_side` on the long side."""
    height, width = pixels.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return pixels, edit
    h, w = max(1, round(height * scale)), max(1, round(width * scale))
    small = cv2.resize(pixels, (w, h), interpolation=cv2.INTER_AREA).reshape((h, w) + pixels.shape[2:])
    return small, edit.fitted(height, width).resized(h, w)


def main(idle_timeout: float = DEFAULT_IDLE_TIMEOUT, max_pixels: int = DEFAULT_MAX_PIXELS,
         frame_timeout: float = DEFAULT_FRAME_TIMEOUT) -> int:
    """Serve on this process's stdin and stdout. Anything else that writes to stdout (a library's
    stray print) is sent to stderr, so that stdout carries frames only."""
    frames_out = os.fdopen(os.dup(1), "wb", buffering=1 << 20)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    frames_in: PipeReader | BinaryIO
    if os.name == "posix":  # select() waits on pipes here: a frame that stops coming times out
        frames_in = PipeReader(os.dup(0), frame_timeout)
    else:
        frames_in = os.fdopen(os.dup(0), "rb", buffering=1 << 20)
    shared = SharedFolder.attach(os.environ.get(SHARED_DIR_VARIABLE))
    keep_freed_memory()  # a long-lived process: jobs reuse each other's memory
    return Worker(frames_in, frames_out, idle_timeout, max_pixels, shared).serve()
