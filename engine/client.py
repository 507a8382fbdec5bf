"""Talk to the SIM-Net engine worker: the one module both plug-ins vendor.

Standard library only (Krita's and GIMP's Pythons have no numpy). It starts `simnet worker` with
the configured interpreter, speaks the protocol below over the worker's stdin/stdout (no socket,
no port), and turns every failure into `EngineError`, whose `message` is written for the artist.

The protocol, version 1. Every message in either direction is one frame:

    MAGIC (8 bytes) | header length (4 bytes, big-endian) | header (UTF-8 JSON) | buffers

The header is an object: {"protocol": 1, "id": int, "op" (requests) or "type" (replies),
"params": {...}, "buffers": [{"name", "shape", "dtype", "nbytes"}, ...]}, and the buffers
follow in that order, raw and C-contiguous. dtypes: uint8, uint16, int32, float16, float32
(little-endian). Requests: hello, segment, manipulate, preview, cancel, shutdown. Replies to a
request id: any number of {"type": "progress", "stage", "fraction"}, then one {"type": "result"}
(with buffers) or {"type": "error", "code", "message", "details"}.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import struct
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field

PROTOCOL = 1
MAGIC = b"\x89SIMNET\n"
MAX_HEADER = 64 * 1024
ITEM_SIZES = {"uint8": 1, "uint16": 2, "int32": 4, "float16": 2, "float32": 4}
_LENGTH = struct.Struct(">I")


class FrameError(ValueError):
    """A frame that breaks the protocol; `code` names the rule, `resync` says whether the
    stream position is lost (the reader must look for the next MAGIC)."""

    def __init__(self, code: str, message: str, resync: bool = False):
        super().__init__(message)
        self.code = code
        self.resync = resync


@dataclass
class Buffer:
    """Raw C-order array data: `data` bytes-like, `shape` a tuple, `dtype` a key of ITEM_SIZES."""

    data: bytes
    shape: tuple
    dtype: str


@dataclass
class Frame:
    header: dict
    buffers: dict[str, Buffer] = field(default_factory=dict)


def encode_frame(header: dict, buffers: dict[str, Buffer] | None = None) -> list:
    """Frame parts, ready to be written one after another (buffers are not copied)."""
    buffers = buffers or {}
    header = dict(header, protocol=PROTOCOL, buffers=[
        {"name": name, "shape": list(b.shape), "dtype": b.dtype, "nbytes": len(memoryview(b.data).cast("B"))}
        for name, b in buffers.items()
    ])
    body = json.dumps(header, separators=(",", ":")).encode()
    if len(body) > MAX_HEADER:
        raise FrameError("header_too_large", f"header of {len(body)} bytes exceeds {MAX_HEADER}")
    return [MAGIC, _LENGTH.pack(len(body)), body, *(b.data for b in buffers.values())]


def _read_exactly(stream, count: int) -> bytearray:
    data = bytearray(count)
    view = memoryview(data)
    got = 0
    while got < count:
        read = stream.readinto(view[got:])
        if not read:
            raise EOFError(f"stream ended after {got} of {count} bytes")
        got += read
    return data


def _skip(stream, count: int) -> None:
    while count > 0:
        chunk = stream.read(min(count, 1 << 20))
        if not chunk:
            raise EOFError("stream ended while skipping")
        count -= len(chunk)


def resync(stream) -> None:
    """Read up to and including the next MAGIC (after a frame whose extent is unknown)."""
    window = b""
    while True:
        byte = stream.read(1)
        if not byte:
            raise EOFError("stream ended while looking for the next frame")
        window = (window + byte)[-len(MAGIC):]
        if window == MAGIC:
            return


def read_frame(stream, max_buffer_bytes: int, magic_read: bool = False) -> Frame:
    """Read one frame. Raises EOFError at the end of the stream and FrameError for a frame that
    breaks the protocol; after a FrameError with resync False the stream is at the next frame."""
    if not magic_read:
        magic = stream.read(len(MAGIC))
        if not magic:
            raise EOFError("end of stream")
        if magic != MAGIC:
            raise FrameError("bad_magic", "the stream is not at a frame", resync=True)
    (length,) = _LENGTH.unpack(_read_exactly(stream, _LENGTH.size))
    if length > MAX_HEADER:
        raise FrameError("header_too_large", f"a {length}-byte header exceeds the {MAX_HEADER}-byte limit", resync=True)
    try:
        header = json.loads(_read_exactly(stream, length))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FrameError("bad_header", f"the header is not JSON: {error}", resync=True) from None
    if not isinstance(header, dict):
        raise FrameError("bad_header", "the header is not a JSON object", resync=True)
    specs = header.get("buffers", [])
    declared = _declared_sizes(specs)
    if declared is None:
        raise FrameError("bad_buffers", "the buffer list is malformed", resync=True)
    if sum(declared) > max_buffer_bytes:
        raise FrameError("too_large", f"{sum(declared)} bytes of buffers exceed the limit of {max_buffer_bytes}", resync=True)
    problem = _check_buffer_specs(specs)
    if problem:
        _skip(stream, sum(declared))  # the extent is known: stay in step with the stream
        raise FrameError("bad_buffers", problem)
    if header.get("protocol") != PROTOCOL:
        _skip(stream, sum(declared))
        raise FrameError("protocol_version", f"protocol {header.get('protocol')!r} is not {PROTOCOL}")
    buffers = {
        spec["name"]: Buffer(_read_exactly(stream, spec["nbytes"]), tuple(spec["shape"]), spec["dtype"])
        for spec in specs
    }
    return Frame(header, buffers)


def _declared_sizes(specs) -> list[int] | None:
    if not isinstance(specs, list) or len(specs) > 16:
        return None
    sizes = []
    for spec in specs:
        if not isinstance(spec, dict) or type(spec.get("nbytes")) is not int or spec["nbytes"] < 0:
            return None
        sizes.append(spec["nbytes"])
    return sizes


def _check_buffer_specs(specs: list) -> str | None:
    names = set()
    for spec in specs:
        name, shape, dtype = spec.get("name"), spec.get("shape"), spec.get("dtype")
        if not isinstance(name, str) or name in names:
            return f"buffer name {name!r} is missing or repeated"
        names.add(name)
        if dtype not in ITEM_SIZES:
            return f"buffer {name}: dtype {dtype!r} is not one of {sorted(ITEM_SIZES)}"
        if not isinstance(shape, list) or not 1 <= len(shape) <= 3 or any(type(s) is not int or s < 0 for s in shape):
            return f"buffer {name}: shape {shape!r} is not 1 to 3 non-negative integers"
        expected = ITEM_SIZES[dtype]
        for size in shape:
            expected *= size
        if expected != spec["nbytes"]:
            return f"buffer {name}: {spec['nbytes']} bytes, but shape {shape} of {dtype} needs {expected}"
    return None


def write_frame(stream, lock: threading.Lock, header: dict, buffers: dict[str, Buffer] | None = None) -> None:
    parts = encode_frame(header, buffers)
    with lock:
        for part in parts:
            stream.write(part)
        stream.flush()


# ---------------------------------------------------------------------------------------------
# The client


class EngineError(Exception):
    """Anything that went wrong: `message` for the artist, `code` for programs, `details` for a
    bug report."""

    def __init__(self, code: str, message: str, details: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


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
    def from_buffer(cls, buffer: Buffer) -> "Image":
        height, width, channels = buffer.shape
        return cls(buffer.data, width, height, channels, buffer.dtype)


def mask_buffer(data: bytes, width: int, height: int, dtype: str = "uint8") -> Buffer:
    """A selection mask (uint8 0..255 or float32 0..1), one sample per pixel."""
    return Buffer(data, (height, width), dtype)


def labels_buffer(data: bytes, width: int, height: int, dtype: str = "int32") -> Buffer:
    """A region map: one region id per pixel, int32, or uint8/uint16 when the ids fit (a
    quarter or half of the bytes through the pipe)."""
    return Buffer(data, (height, width), dtype)


_DEAD = object()
_CRASH_MESSAGE = "The SIM-Net engine stopped unexpectedly. Try again: a fresh engine will be started."


class Client:
    """One worker process, started on first use and again after a crash.

    `command` is the worker's command line, e.g. [python, "-m", "engine", "worker"]. Calls may
    come from several threads; each blocks until its reply.
    """

    def __init__(self, command: list[str], env: dict | None = None):
        self.command = list(command)
        self.env = env
        self._process = None
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._pending: dict[int, queue.Queue] = {}
        self._ids = itertools.count(1)
        self._log = None
        self.last_seconds = None  # the engine's own time for the last manipulate/preview

    # -- process management

    def _ensure_started(self):
        with self._state_lock:
            if self._process is not None and self._process.poll() is None:
                return self._process
            self._log = tempfile.TemporaryFile()
            try:
                self._process = subprocess.Popen(
                    self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                    env=self.env, bufsize=0,
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
            return self._process

    def _read_replies(self, process) -> None:
        stream = process.stdout
        try:
            while True:
                frame = read_frame(stream, max_buffer_bytes=1 << 40)
                waiting = self._pending.get(frame.header.get("id"))
                if waiting is not None:
                    waiting.put(frame)
        except (EOFError, FrameError, OSError, ValueError):
            pass
        process.wait()
        for waiting in list(self._pending.values()):
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
        """Ask the worker to stop, and make sure it does."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        try:
            self._request("shutdown", {}, None, None, None)
        except EngineError:
            pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    # -- requests

    def _request(self, op, params, buffers, progress, on_id):
        process = self._ensure_started()
        request_id = next(self._ids)
        replies: queue.Queue = queue.Queue()
        self._pending[request_id] = replies
        try:
            if on_id is not None:
                on_id(request_id)
            try:
                write_frame(process.stdin, self._write_lock, {"id": request_id, "op": op, "params": params}, buffers)
            except (BrokenPipeError, OSError, ValueError):
                raise EngineError("worker_crashed", _CRASH_MESSAGE, self._crash_details()) from None
            while True:
                reply = replies.get()
                if reply is _DEAD:
                    raise EngineError("worker_crashed", _CRASH_MESSAGE, self._crash_details())
                kind = reply.header.get("type")
                if kind == "progress":
                    if progress is not None:
                        progress(reply.header.get("stage", ""), float(reply.header.get("fraction", 0.0)))
                elif kind == "error":
                    raise EngineError(reply.header.get("code", "error"), reply.header.get("message", "error"),
                                      reply.header.get("details", ""))
                else:
                    return reply
        finally:
            self._pending.pop(request_id, None)

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
                   model: str | None = None, channel_order: str = "rgba", progress=None, on_id=None) -> Image:
        """The manipulated image at full size, same layout and dtype as `exemplar`. Give both
        masks, both region-id maps, or both painted colour maps (Images in the exemplar's
        layout). `progress(stage, fraction)` is called from this thread; `on_id(request_id)`
        tells the id to pass to `cancel` from another thread."""
        edit = dict(source_mask=source_mask, target_mask=target_mask, exemplar_regions=exemplar_regions,
                    target_regions=target_regions, exemplar_map=exemplar_map, target_map=target_map)
        return self._manipulate("manipulate", {}, exemplar, edit, model, channel_order, progress, on_id)

    def preview(self, exemplar: Image, max_side: int = 512, for_display: bool = False, *, model: str | None = None,
                channel_order: str = "rgba", progress=None, on_id=None, **edit) -> Image:
        """As `manipulate`, computed on a copy at most `max_side` pixels on its long side;
        `for_display` asks for 8-bit RGBA whatever the exemplar's depth."""
        params = {"max_side": max_side, "for_display": for_display}
        return self._manipulate("preview", params, exemplar, edit, model, channel_order, progress, on_id)

    def _manipulate(self, op, params, exemplar, edit, model, channel_order, progress, on_id) -> Image:
        buffers = {"exemplar": exemplar.buffer()}
        for name, value in edit.items():
            if value is not None:
                buffers[name] = value.buffer() if isinstance(value, Image) else value
        params = dict(params, channel_order=channel_order)
        if model:
            params["model"] = model
        reply = self._request(op, params, buffers, progress, on_id)
        self.last_seconds = reply.header.get("params", {}).get("seconds")
        return Image.from_buffer(reply.buffers["image"])

    def cancel(self, request_id: int) -> None:
        """Stop request `request_id`: its call raises EngineError with code "cancelled"."""
        if self._process is not None and self._process.poll() is None:
            try:
                self._request("cancel", {"request": request_id}, None, None, None)
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
