"""No frame may kill or wedge the worker: type-confused headers, hostile numbers and nesting,
frames that stop half-way, shared-memory traps; and the client's restarts and clean-up."""

import io
import json
import os
import signal
import struct
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import protocol_fuzz
from engine.app.worker import READER_FAILED_STATUS, Worker
from engine.link import protocol
from engine.link.client import Client, EngineError, Image, mask_buffer, worker_command

from .conftest import REPO, square_mask, textured

needs_shm = pytest.mark.skipif(protocol.SharedFolder.create() is None, reason="no writable /dev/shm")


def _frame(header: dict, payload: bytes = b"") -> bytes:
    body = json.dumps(header).encode()
    return protocol.MAGIC + struct.pack(">I", len(body)) + body + payload


def _hello(request_id: int = 99) -> bytes:
    return _frame({"protocol": 1, "id": request_id, "op": "hello", "params": {}, "buffers": []})


def _replies(out: bytes) -> list[dict]:
    stream, replies = io.BytesIO(out), []
    while True:
        try:
            replies.append(protocol.read_frame(stream, 1 << 30).header)
        except EOFError:
            return replies


def _serve(frames: list[bytes], env: dict | None = None, timeout: float = 60) -> tuple[list[dict], int]:
    """Every frame, then a hello, to a fresh worker; its replies and exit status at the end of input."""
    worker = subprocess.Popen(worker_command() + ["--frame-timeout", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env)
    out, err = worker.communicate(b"".join(frames) + _hello(), timeout=timeout)
    assert b"Traceback" not in err, err.decode()[-2000:]
    return _replies(out), worker.returncode


def _ends_with_hello(replies: list[dict]) -> None:
    assert replies and replies[-1]["id"] == 99 and replies[-1]["type"] == "result", replies[-3:]


TYPE_CONFUSED = [
    ({"protocol": 1, "id": [1], "op": "hello", "buffers": []}, "bad_request"),
    ({"protocol": 1, "id": {"a": 1}, "op": "hello", "buffers": []}, "bad_request"),
    ({"protocol": 1, "id": True, "op": "hello", "buffers": []}, "bad_request"),
    ({"protocol": 1, "id": 1, "op": ["hello"], "buffers": []}, "bad_request"),
    ({"protocol": 1, "id": 1, "op": {"x": 1}, "buffers": []}, "bad_request"),
    ({"protocol": 1, "id": 1, "op": "hello", "shared": [1], "buffers": []}, "bad_request"),
    ({"protocol": 1, "id": 1, "op": "cancel", "params": {"request": [1, 2]}, "buffers": []}, "bad_request"),
    ({"protocol": 1, "id": 1, "op": "cancel", "params": {"request": {"a": 1}}, "buffers": []}, "bad_request"),
    ({"protocol": 1, "id": 1, "op": "segment", "buffers": [{"name": "image", "shape": [1], "dtype": ["uint8"], "nbytes": 1}]},
     "bad_buffers"),
    ({"protocol": 1, "id": 1, "op": "segment", "buffers": [{"name": "image", "shape": [1], "dtype": {"a": 1}, "nbytes": 1}]},
     "bad_buffers"),
    ({"protocol": 1, "id": 1, "op": "manipulate", "params": {"model": "m" * 10_000}, "buffers": []}, "bad_request"),
    ({"protocol": 1, "id": 1, "op": "manipulate", "buffers": [{"name": "source_mask", "shape": [0, 10 ** 18], "dtype": "uint8",
                                                             "nbytes": 0}]}, "bad_buffers"),
]


@pytest.mark.parametrize("header, code", TYPE_CONFUSED)
def test_header_fields_of_the_wrong_type_get_an_error_and_the_worker_keeps_serving(header, code):
    payload = bytes(1) if header.get("buffers") and header["buffers"][0]["nbytes"] == 1 else b""
    replies, status = _serve([_frame(header, payload)])
    assert replies[0]["type"] == "error" and replies[0]["code"] == code, replies[0]
    _ends_with_hello(replies)
    assert status == 0


@pytest.mark.parametrize("body, fragment", [
    (b'{"protocol": 1, "id": 1, "op": "hello", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}", "nested deeper"),
    (b'{"protocol": 1, "id": ' + b"7" * 4400 + b', "op": "hello"}', "4400 digits"),
    (b'{"protocol": 1, "id": 1, "op": "hello", "x": 1e400}', "out of range"),
    (b'{"protocol": 1, "id": 1, "op": "hello", "x": NaN}', "NaN is not allowed"),
    (b'{"protocol": 1, "id": 1, "buffers": [{"name": "a", "shape": [0, ' + b"1" * 31 + b'], "dtype": "uint8", "nbytes": 0}]}',
     "31 digits"),
])
def test_numbers_and_nesting_beyond_the_bounds_are_answered(body, fragment):
    replies, status = _serve([protocol.MAGIC + struct.pack(">I", len(body)) + body])
    assert replies[0]["code"] == "bad_header" and fragment in replies[0]["details"]
    _ends_with_hello(replies)
    assert status == 0


def test_an_error_that_would_echo_a_huge_operation_name_is_cut_to_fit():
    replies, status = _serve([_frame({"protocol": 1, "id": 5, "op": "x" * 44_000, "params": {}, "buffers": []})])
    assert replies[0]["id"] == 5 and replies[0]["code"] == "bad_request"
    assert len(json.dumps(replies[0])) < protocol.MAX_HEADER
    _ends_with_hello(replies)


def test_a_frame_whose_buffers_never_come_is_given_up_and_the_worker_answers_again():
    worker = subprocess.Popen(worker_command() + ["--frame-timeout", "0.5"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    try:
        spec = {"name": "image", "shape": [100, 100, 4], "dtype": "uint8", "nbytes": 40_000}
        worker.stdin.write(_frame({"protocol": 1, "id": 1, "op": "segment", "params": {}, "buffers": [spec]}, b"only this"))
        worker.stdin.flush()
        time.sleep(1.0)  # the pipe stays open: the worker must not wait for the rest forever
        worker.stdin.write(_hello())
        worker.stdin.close()
        replies = _replies(worker.stdout.read())
    finally:
        worker.wait(timeout=30)
    assert replies[0]["id"] is None and replies[0]["code"] == "timeout"
    _ends_with_hello(replies)


def test_a_reader_that_fails_ends_the_worker_with_its_own_status(capfd):
    class Broken(io.RawIOBase):
        def read(self, size=-1):
            raise RuntimeError("the input broke")

    status = Worker(Broken(), io.BytesIO()).serve()
    assert status == READER_FAILED_STATUS
    assert "stopped reading requests: RuntimeError: the input broke" in capfd.readouterr().err


def test_a_client_that_goes_away_mid_reply_ends_the_worker_quietly():
    worker = subprocess.Popen(worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    worker.stdout.close()  # nobody reads the replies
    worker.stdin.write(_hello() * 3)
    worker.stdin.close()
    assert worker.wait(timeout=30) == 0
    assert b"Traceback" not in worker.stderr.read()


# -- shared memory


def _shared_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o700)
    return folder


def _segment_from(name: str, nbytes: int = 64) -> bytes:
    spec = {"name": "image", "shape": [4, 4, 4], "dtype": "uint8", "nbytes": nbytes, "file": name}
    return _frame({"protocol": 1, "id": 1, "op": "segment", "params": {}, "buffers": [spec]})


def _shared_env(folder: Path) -> dict:
    return dict(os.environ, **{protocol.SHARED_DIR_VARIABLE: str(folder)})


def test_a_fifo_named_like_a_buffer_is_refused_without_blocking(tmp_path):
    folder = _shared_folder(tmp_path)
    os.mkfifo(folder / "pipe-0.buf")
    replies, _ = _serve([_segment_from("pipe-0.buf")], _shared_env(folder), timeout=30)
    assert replies[0]["code"] == "bad_buffers" and "not a file of 64 bytes" in replies[0]["details"]
    _ends_with_hello(replies)


def test_hard_linked_and_foreign_files_are_refused(tmp_path):
    folder = _shared_folder(tmp_path)
    (tmp_path / "elsewhere").write_bytes(bytes(64))
    os.link(tmp_path / "elsewhere", folder / "link-0.buf")
    frames = [_segment_from("link-0.buf")]
    if os.getuid() == 0:  # only root can give a file away
        (folder / "theirs-0.buf").write_bytes(bytes(64))
        os.chown(folder / "theirs-0.buf", 65534, 65534)
        frames.append(_segment_from("theirs-0.buf"))
    replies, _ = _serve(frames, _shared_env(folder))
    assert [r["code"] for r in replies[:-1]] == ["bad_buffers"] * len(frames)
    assert all("other links or another owner" in r["details"] for r in replies[:-1])
    _ends_with_hello(replies)


def test_request_files_truncated_after_sending_never_kill_the_worker(tmp_path):
    folder = _shared_folder(tmp_path)
    worker = subprocess.Popen(worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              env=_shared_env(folder))
    size = 512 * 512 * 4
    frames = []
    try:
        for attempt in range(20):
            name = f"q{attempt}-0.buf"
            (folder / name).write_bytes(np.random.default_rng(attempt).integers(0, 255, size, np.uint8).tobytes())
            spec = {"name": "image", "shape": [512, 512, 4], "dtype": "uint8", "nbytes": size, "file": name}
            worker.stdin.write(_frame({"protocol": 1, "id": attempt, "op": "segment", "params": {"max_regions": 2},
                                       "buffers": [spec]}))
            worker.stdin.flush()
            time.sleep(0.002 * (attempt % 5))
            os.truncate(folder / name, 100)  # the client's file cut under the worker's feet
            frames.append(attempt)
        worker.stdin.write(_hello())
        worker.stdin.close()
        replies = _replies(worker.stdout.read())
    finally:
        worker.wait(timeout=120)
    assert worker.returncode == 0  # no SIGBUS
    assert sorted(r["id"] for r in replies if r["type"] in ("result", "error") and r["id"] != 99) == frames
    _ends_with_hello(replies)


@needs_shm
def test_the_shared_folders_parent_can_be_chosen(tmp_path, monkeypatch):
    parent = tmp_path / "fast"
    parent.mkdir()
    monkeypatch.setenv(protocol.SHARED_PARENT_VARIABLE, str(parent))
    client = Client(worker_command())
    try:
        assert client.hello()["shared_memory"] is True
        assert Path(client._shared.path).parent == parent
    finally:
        client.close()
    assert list(parent.iterdir()) == []


# -- the client


def _job(client: Client):
    h, w = 40, 60
    pixels = (textured(h, w, 4) * 255).astype(np.uint8)
    source = (square_mask(h, w, 5, 5, 10) * 255).astype(np.uint8)
    target = (square_mask(h, w, 35, 12, 10) * 255).astype(np.uint8)
    return client.manipulate(Image(pixels.tobytes(), w, h, 4), source_mask=mask_buffer(source.tobytes(), w, h),
                             target_mask=mask_buffer(target.tobytes(), w, h), model="moments")


def test_a_worker_killed_just_before_a_call_is_replaced_and_the_call_succeeds():
    client = Client(worker_command())
    try:
        for _ in range(5):
            first = client.pid or client.hello()["pid"]
            os.kill(first, signal.SIGKILL)
            deadline = time.monotonic() + 5  # dead, its pipes closed (a zombie, or already reaped)
            while time.monotonic() < deadline and _alive(first):
                time.sleep(0.001)
            result = _job(client)
            assert result.width == 60 and client.pid not in (None, first)
    finally:
        client.close()


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@needs_shm
def test_close_removes_the_shared_folder_when_the_worker_is_already_dead():
    client = Client(worker_command())
    client.hello()
    folder = client._shared.path
    os.kill(client.pid, signal.SIGKILL)
    client._process.wait()
    client.close()
    assert not os.path.exists(folder)


def test_a_request_the_worker_read_before_dying_is_reported_not_sent_again():
    client = Client(worker_command())
    try:
        pid = client.hello()["pid"]
        killer = threading.Timer(0.3, os.kill, (pid, signal.SIGKILL))
        h = w = 1024
        pixels = (textured(h, w, 4) * 255).astype(np.uint8)
        source = (square_mask(h, w, 100, 100, 300) * 255).astype(np.uint8)
        target = (square_mask(h, w, 500, 400, 300) * 255).astype(np.uint8)
        killer.start()
        with pytest.raises(EngineError) as caught:
            for _ in range(20):  # long enough to be running when the kill comes
                client.manipulate(Image(pixels.tobytes(), w, h, 4), source_mask=mask_buffer(source.tobytes(), w, h),
                                  target_mask=mask_buffer(target.tobytes(), w, h))
        assert caught.value.code == "worker_crashed"
    finally:
        client.close()


# -- fuzzing a live worker (the long run is bench/protocol_fuzz.py)


@pytest.fixture(scope="module")
def live_worker():
    target = protocol_fuzz.Target(REPO, frame_timeout=0.2)
    yield target
    target.close()


SEEDS = protocol_fuzz.seed_frames(__import__("random").Random(0))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(lambda data: protocol.MAGIC + data),
    st.tuples(st.sampled_from(SEEDS), st.integers(0, 2**32)).map(
        lambda pair: protocol_fuzz.mutate(pair[0], __import__("random").Random(pair[1]))),
    st.integers(0, 2**32).map(lambda seed: protocol_fuzz.hostile_frame(__import__("random").Random(seed), None)),
))
def test_fuzzed_frames_never_crash_or_wedge_a_live_worker(live_worker, data):
    outcome = protocol_fuzz.try_frame(live_worker, data)
    if outcome in ("crash", "hang"):
        detail = live_worker.stderr_text()
        live_worker.restart()
        pytest.fail(f"{outcome} after {data[:200]!r}: {detail}")
    assert outcome in ("ok", "recovered")
