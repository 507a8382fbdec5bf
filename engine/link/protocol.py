"""The framed protocol between the plug-ins and the engine worker: frames, buffers and shared
memory. Standard library only: the plug-ins vendor this folder (engine/link/) whole.

The protocol, version 1. Every message in either direction is one frame:

    MAGIC (8 bytes) | header length (4 bytes, big-endian) | header (UTF-8 JSON) | buffers

The header is an object: {"protocol": 1, "id": int, "op" (requests) or "type" (replies),
"params": {...}, "buffers": [{"name", "shape", "dtype", "nbytes"}, ...]}, and the buffers
follow in that order, raw and C-contiguous. dtypes: uint8, uint16, int32, float16, float32
(little-endian). Requests: hello, segment, manipulate, preview, cancel, shutdown. Replies to a
request id: any number of {"type": "progress", "stage", "fraction"}, then one {"type": "result"}
(with buffers) or {"type": "error", "code", "message", "details"}.

Headers are bounded: at most 64 KiB, nested at most 16 deep, integers of at most 19 digits, no
NaN or infinity; a frame that breaks a bound is answered with an error, never a crash.

Large buffers may travel through shared memory instead of the pipes (a 4096x4096 RGBA image
is 64 MB each way, and copying it through a pipe cost more than all the rest of the protocol).
The client makes a private folder (mode 0700) in /dev/shm, or in the folder that the
SIMNET_SHARED_PARENT environment variable names, and hands it to the worker in the
SIMNET_SHARED_DIR environment variable; the worker's `hello` says whether it accepted it
("shared_memory"). A buffer spec with {"file": NAME} then has no bytes in the frame: its bytes
are the file NAME in that folder (a plain name, no path; a regular file of exactly nbytes, with
one link, owned by the reader's user). The worker copies a request's file out as it reads the
frame (a file truncated under a mapping would kill it with SIGBUS); the client maps the
worker's reply files read-only. Requests whose header has "shared": true may get their reply
buffers that way too; whoever reads a file removes it. Without shared memory (or when a file
cannot be written) buffers go through the pipes as above.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import re
import select
import shutil
import stat
import struct
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

PROTOCOL = 1
MAGIC = b"\x89SIMNET\n"
MAX_HEADER = 64 * 1024
MAX_NESTING = 16  # brackets deep; a request header needs 4
MAX_DIGITS = 19  # an integer beyond this is no size, id or count the protocol has
MAX_DIMENSION = (1 << 31) - 1
ITEM_SIZES = {"uint8": 1, "uint16": 2, "int32": 4, "float16": 2, "float32": 4}
_LENGTH = struct.Struct(">I")
SHARED_DIR_VARIABLE = "SIMNET_SHARED_DIR"
SHARED_PARENT_VARIABLE = "SIMNET_SHARED_PARENT"
DEFAULT_SHARED_PARENT = "/dev/shm"
# Buffers from this size on go through shared memory when both sides have it.
SHARED_MIN_BYTES = 1 << 20
_SHARED_NAME = re.compile(r"[a-z0-9-]{1,40}\.buf")


class FrameError(ValueError):
    """A frame that breaks the protocol; `code` names the rule, `resync` says whether the
    stream position is lost (the reader must look for the next MAGIC), `request_id` is the
    frame's id when its header could be read (so the error can answer that request)."""

    def __init__(self, code: str, message: str, resync: bool = False, request_id=None):
        super().__init__(message)
        self.code = code
        self.resync = resync
        self.request_id = request_id


class FrameTimeout(FrameError):
    """The rest of a frame did not come in time: the stream position is lost."""

    def __init__(self, seconds: float):
        super().__init__("timeout", f"the rest of the frame did not arrive within {seconds:g} s", resync=True)


class PipeReader:
    """Reads a pipe (POSIX) with a deadline for the frame being read: `deadline` (a
    time.monotonic() value, or None to wait as long as it takes) makes a read that would pass it
    raise FrameTimeout, so that a frame whose bytes never come cannot hold its reader."""

    def __init__(self, fd: int, timeout: float):
        self.fd = fd
        self.timeout = timeout
        self.deadline: float | None = None
        self._pending = bytearray()

    def _wait(self) -> None:
        if self.deadline is None:
            return
        left = self.deadline - time.monotonic()
        if left <= 0 or not select.select([self.fd], [], [], left)[0]:
            raise FrameTimeout(self.timeout)

    def readinto(self, view) -> int:
        view = memoryview(view).cast("B")
        if self._pending:
            count = min(len(view), len(self._pending))
            view[:count] = self._pending[:count]
            del self._pending[:count]
            return count
        self._wait()
        if len(view) >= 1 << 16:
            return os.readv(self.fd, [view])
        data = os.read(self.fd, 1 << 16)
        count = min(len(view), len(data))
        view[:count] = data[:count]
        self._pending += data[count:]
        return count

    def read(self, size: int) -> bytes:
        """Up to `size` bytes: fewer only at the end of the stream."""
        data = bytearray(size)
        view, got = memoryview(data), 0
        while got < size:
            count = self.readinto(view[got:])
            if not count:
                break
            got += count
        return bytes(data[:got])


@dataclass
class Buffer:
    """Raw C-order array data: `data` bytes-like, `shape` a tuple, `dtype` a key of ITEM_SIZES.
    `file`: the name it has (or had) in the shared folder, when it travels that way."""

    data: Any  # bytes, bytearray, memoryview, mmap or a C-contiguous numpy array
    shape: tuple
    dtype: str
    file: str | None = None

    @property
    def nbytes(self) -> int:
        return len(memoryview(self.data).cast("B"))


class SharedFolder:
    """The private folder in shared memory that large buffers cross through (see the module
    docstring). Files are opened relative to the folder, never following links."""

    def __init__(self, path: str, copy_in: bool = False):
        self.path = path
        self.copy_in = copy_in  # read files by copying them (the worker), not by mapping them
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        self._closer = weakref.finalize(self, os.close, self._fd)
        self._remover: weakref.finalize | None = None  # set on the folder this side created

    @classmethod
    def create(cls) -> SharedFolder | None:
        """A new private folder in SIMNET_SHARED_PARENT (default /dev/shm), or None where there
        is none (not Linux, full, not writable)."""
        parent = os.environ.get(SHARED_PARENT_VARIABLE) or DEFAULT_SHARED_PARENT
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
            return None
        try:
            folder = cls(tempfile.mkdtemp(prefix="simnet-", dir=parent))
        except OSError:
            return None
        folder._remover = weakref.finalize(folder, shutil.rmtree, folder.path, True)
        return folder

    @classmethod
    def attach(cls, path: str | None) -> SharedFolder | None:
        """The folder a client made for us, if it is one: a directory of our own user that
        nobody else may enter."""
        if not path:
            return None
        try:
            info = os.stat(path, follow_symlinks=False)
        except OSError:
            return None
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            return None
        return cls(path, copy_in=True)

    def write(self, name: str, data) -> bool:
        """Write `data` (bytes-like) as the file `name`; False (and nothing left) if it cannot."""
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=self._fd)
        except OSError:
            return False
        try:
            view = memoryview(data).cast("B")
            while view:
                view = view[os.write(fd, view[: 1 << 30]):]
            return True
        except OSError:  # no room in /dev/shm: the caller sends it through the pipe instead
            self.remove(name)
            return False
        finally:
            os.close(fd)

    def create_mapped(self, name: str, nbytes: int):
        """A new file `name` of `nbytes`, its space reserved, mapped for writing (None if it
        cannot be made): a producer writes its result straight into it."""
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=self._fd)
        except OSError:
            return None
        try:
            os.posix_fallocate(fd, 0, nbytes)  # a full /dev/shm fails here, not as SIGBUS on writing
            return mmap.mmap(fd, nbytes)
        except (OSError, ValueError):
            self.remove(name)
            return None
        finally:
            os.close(fd)

    def load(self, name, nbytes: int):
        """The bytes of the file `name`, of exactly `nbytes`: copied out (`copy_in`), or mapped
        read-only. Only a plain name in this folder, never a link, a FIFO or a device (opened
        without blocking, then checked), a regular file with one link owned by this user."""
        if not isinstance(name, str) or not _SHARED_NAME.fullmatch(name):
            raise FrameError("bad_buffers", f"shared buffer name {name!r:.60} is not a plain file name")
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0), dir_fd=self._fd)
        except OSError as error:
            raise FrameError("bad_buffers", f"shared buffer {name} cannot be opened: {error.strerror}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size != nbytes:
                raise FrameError("bad_buffers", f"shared buffer {name} is not a file of {nbytes} bytes")
            if info.st_nlink != 1 or info.st_uid != os.getuid():
                raise FrameError("bad_buffers", f"shared buffer {name} has other links or another owner")
            if not self.copy_in:
                return mmap.mmap(fd, nbytes, access=mmap.ACCESS_READ) if nbytes else b""
            data = bytearray(nbytes)
            view, got = memoryview(data), 0
            while got < nbytes:
                count = os.readv(fd, [view[got:]])
                if not count:
                    raise FrameError("bad_buffers", f"shared buffer {name} was cut short while it was read")
                got += count
            return data
        finally:
            os.close(fd)

    def remove(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self._fd)
        except OSError:
            pass

    def clear(self, prefix: str = "") -> None:
        """Remove every file whose name starts with `prefix` (left by a worker that stopped or
        failed mid-reply)."""
        for name in os.listdir(self.path):
            if name.startswith(prefix):
                self.remove(name)

    def destroy(self) -> None:
        self._closer()
        shutil.rmtree(self.path, ignore_errors=True)


@dataclass
class Frame:
    header: dict
    buffers: dict[str, Buffer] = field(default_factory=dict)


def encode_frame(header: dict, buffers: dict[str, Buffer] | None = None) -> list:
    """Frame parts, ready to be written one after another (buffers are not copied). A buffer
    with a `file` is already in the shared folder: only its spec goes into the frame."""
    buffers = buffers or {}
    specs = []
    for name, b in buffers.items():
        spec = {"name": name, "shape": list(b.shape), "dtype": b.dtype, "nbytes": b.nbytes}
        if b.file:
            spec["file"] = b.file
        specs.append(spec)
    header = dict(header, protocol=PROTOCOL, buffers=specs)
    body = json.dumps(header, separators=(",", ":")).encode()
    if len(body) > MAX_HEADER:
        raise FrameError("header_too_large", f"header of {len(body)} bytes exceeds {MAX_HEADER}")
    return [MAGIC, _LENGTH.pack(len(body)), body, *(b.data for b in buffers.values() if not b.file)]


def place_in_shared(folder: SharedFolder | None, prefix: str, buffers: dict[str, Buffer] | None) -> dict:
    """`buffers` with each large one written into `folder` as PREFIX-N.buf (when it can be);
    the others unchanged."""
    if folder is None or not buffers:
        return buffers or {}
    placed = {}
    for index, (name, buffer) in enumerate(buffers.items()):
        file = f"{prefix}-{index}.buf"
        if not buffer.file and buffer.nbytes >= SHARED_MIN_BYTES and folder.write(file, buffer.data):
            buffer = Buffer(buffer.data, buffer.shape, buffer.dtype, file)
        placed[name] = buffer
    return placed


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


def read_frame(stream, max_buffer_bytes: int, magic_read: bool = False, shared: SharedFolder | None = None) -> Frame:
    """Read one frame; buffers named by file are loaded from `shared`. Raises EOFError at the
    end of the stream and FrameError for a frame that breaks the protocol; after a FrameError
    with resync False the stream is at the next frame. A PipeReader stream gets its timeout
    for the rest of the frame once the frame's first bytes are in."""
    if not magic_read:
        magic = stream.read(len(MAGIC))
        if not magic:
            raise EOFError("end of stream")
    timed = isinstance(stream, PipeReader)
    if timed:
        stream.deadline = time.monotonic() + stream.timeout
    try:
        if not magic_read and magic != MAGIC:
            raise FrameError("bad_magic", "the stream is not at a frame", resync=True)
        return _read_rest(stream, max_buffer_bytes, shared)
    finally:
        if timed:
            stream.deadline = None


def _read_rest(stream, max_buffer_bytes: int, shared: SharedFolder | None) -> Frame:
    (length,) = _LENGTH.unpack(_read_exactly(stream, _LENGTH.size))
    if length > MAX_HEADER:
        raise FrameError("header_too_large", f"a {length}-byte header exceeds the {MAX_HEADER}-byte limit", resync=True)
    header = parse_header(_read_exactly(stream, length))
    specs = header.get("buffers", [])
    declared = _declared_sizes(specs)
    if declared is None:
        raise FrameError("bad_buffers", "the buffer list is malformed", resync=True)
    if sum(declared) > max_buffer_bytes:
        raise FrameError("too_large", f"{sum(declared)} bytes of buffers exceed the limit of {max_buffer_bytes}", resync=True)
    inline = sum(spec["nbytes"] for spec in specs if "file" not in spec)
    request_id = header.get("id") if type(header.get("id")) is int else None
    problem = _check_buffer_specs(specs)
    if problem:
        _skip(stream, inline)  # the extent is known: stay in step with the stream
        raise FrameError("bad_buffers", problem, request_id=request_id)
    if header.get("protocol") != PROTOCOL:
        _skip(stream, inline)
        raise FrameError("protocol_version", f"protocol {header.get('protocol')!r} is not {PROTOCOL}", request_id=request_id)
    buffers = {}
    for spec in specs:
        shape, dtype = tuple(spec["shape"]), spec["dtype"]
        if "file" not in spec:
            buffers[spec["name"]] = Buffer(_read_exactly(stream, spec["nbytes"]), shape, dtype)
    for spec in specs:  # after the inline bytes, so a bad file leaves the stream in step
        if "file" in spec:
            if shared is None:
                raise FrameError("bad_buffers", f"buffer {spec['name']} is in shared memory, which this side does not have",
                                 request_id=request_id)
            try:
                data = shared.load(spec["file"], spec["nbytes"])
            except FrameError as error:
                error.request_id = request_id
                raise
            buffers[spec["name"]] = Buffer(data, tuple(spec["shape"]), spec["dtype"], spec["file"])
    return Frame(header, {spec["name"]: buffers[spec["name"]] for spec in specs})


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:30]} is out of range")
    return value


def _no_constant(text: str):
    raise ValueError(f"{text} is not allowed")


def parse_header(body: bytes | bytearray) -> dict:
    """A frame header: a JSON object within the bounds of the module docstring, or FrameError."""
    brackets = _STRING.sub(b"", bytes(body)).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
    if deepest > MAX_NESTING:
        raise FrameError("bad_header", f"the header is nested deeper than {MAX_NESTING}", resync=True)
    try:
        header = json.loads(body, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        raise FrameError("bad_header", f"the header is not bounded JSON: {str(error)[:200]}", resync=True) from None
    if not isinstance(header, dict):
        raise FrameError("bad_header", "the header is not a JSON object", resync=True)
    return header


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
        if not isinstance(name, str) or len(name) > 64 or name in names:
            return f"buffer name {name!r:.80} is missing, too long or repeated"
        names.add(name)
        if not isinstance(dtype, str) or dtype not in ITEM_SIZES:
            return f"buffer {name}: dtype {dtype!r:.80} is not one of {sorted(ITEM_SIZES)}"
        if (not isinstance(shape, list) or not 1 <= len(shape) <= 3
                or any(type(s) is not int or not 0 <= s <= MAX_DIMENSION for s in shape)):
            return f"buffer {name}: shape {shape!r:.80} is not 1 to 3 integers from 0 to {MAX_DIMENSION}"
        if "file" in spec and not isinstance(spec["file"], str):
            return f"buffer {name}: its file name is not text"
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
