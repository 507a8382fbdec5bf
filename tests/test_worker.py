"""The worker and its protocol, through real worker processes."""

import io
import json
import mmap
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import manipulate, manipulate_masks
from engine.io.pixels import to_samples
from engine.link import protocol
from engine.link.client import (
    Buffer,
    Client,
    EngineError,
    Image,
    labels_buffer,
    mask_buffer,
    worker_command,
)

from .conftest import REPO, square_mask, textured

HEIGHT, WIDTH = 90, 120


@pytest.fixture
def engine_client():
    client = Client(worker_command())
    yield client
    client.close()


def _edit(height=HEIGHT, width=WIDTH):
    source = (square_mask(height, width, 10, 20, 25) * 255).astype(np.uint8)
    target = (square_mask(height, width, 70, 30, 30) * 255).astype(np.uint8)
    return source, target


def _as_uint8(pixels):
    return to_samples(pixels, "uint8", "rgba")


def test_hello(engine_client):
    info = engine_client.hello()
    assert info["protocol"] == protocol.PROTOCOL and "moments" in info["models"]
    assert info["pid"] == engine_client.pid


def test_manipulate_matches_the_engine_exactly(engine_client):
    pixels = _as_uint8(textured(HEIGHT, WIDTH, 4))
    source, target = _edit()
    stages = []
    result = engine_client.manipulate(
        Image(pixels.tobytes(), WIDTH, HEIGHT, 4),
        source_mask=mask_buffer(source.tobytes(), WIDTH, HEIGHT),
        target_mask=mask_buffer(target.tobytes(), WIDTH, HEIGHT),
        progress=lambda stage, fraction: stages.append((stage, fraction)),
    )
    direct = manipulate_masks(pixels / np.float32(255), source / 255.0, target / 255.0)
    assert (result.width, result.height, result.channels, result.dtype) == (WIDTH, HEIGHT, 4, "uint8")
    assert np.array_equal(np.frombuffer(result.data, np.uint8).reshape(HEIGHT, WIDTH, 4), _as_uint8(direct))
    assert ("transport", 1.0) in stages and stages[0][0] == "motion"


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_high_depth_and_bgra_with_region_maps(engine_client, dtype):
    pixels = textured(HEIGHT, WIDTH, 4)
    samples = (pixels * 65535 + 0.5).astype(np.uint16) if dtype == "uint16" else pixels
    bgra = np.ascontiguousarray(samples[:, :, [2, 1, 0, 3]])
    labels = square_mask(HEIGHT, WIDTH, 10, 20, 25).astype(np.int32)
    moved = square_mask(HEIGHT, WIDTH, 60, 30, 28).astype(np.int32)
    result = engine_client.manipulate(
        Image(bgra.tobytes(), WIDTH, HEIGHT, 4, dtype), channel_order="bgra",
        exemplar_regions=labels_buffer(labels.tobytes(), WIDTH, HEIGHT),
        target_regions=labels_buffer(moved.tobytes(), WIDTH, HEIGHT),
    )
    assert result.dtype == dtype
    out = np.frombuffer(result.data, np.dtype(dtype)).reshape(HEIGHT, WIDTH, 4)[:, :, [2, 1, 0, 3]]
    scale = 65535.0 if dtype == "uint16" else 1.0
    direct = manipulate(samples.astype(np.float32) / np.float32(scale), labels, moved)
    assert np.abs(out / scale - direct).max() <= 1.0 / scale + 1e-6


def test_preview_is_smaller_and_segment_gives_labels_and_colours(engine_client):
    pixels = _as_uint8(textured(400, 600, 3))
    source, target = _edit(400, 600)
    image = Image(pixels.tobytes(), 600, 400, 3)
    small = engine_client.preview(image, max_side=150, source_mask=mask_buffer(source.tobytes(), 600, 400),
                                  target_mask=mask_buffer(target.tobytes(), 600, 400))
    assert (small.width, small.height, small.channels) == (150, 100, 3)
    labels, colours = engine_client.segment(image, max_regions=3)
    assert labels.shape == (400, 600) and (colours.height, colours.width, colours.channels) == (400, 600, 3)
    ids = np.frombuffer(labels.data, np.int32)
    assert 1 <= len(np.unique(ids)) <= 3


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float16", "float32"])
def test_segment_answers_in_the_callers_layout(engine_client, dtype):
    pixels = textured(60, 80, 4).astype(dtype) if dtype.startswith("float") else (textured(60, 80, 4) * (255 if dtype == "uint8" else 65535)).astype(dtype)
    labels, colours = engine_client.segment(Image(pixels.tobytes(), 80, 60, 4, dtype), channel_order="bgra", max_regions=4)
    assert colours.dtype == dtype and colours.channels == 4
    samples = np.frombuffer(colours.data, np.dtype(dtype)).reshape(60, 80, 4).astype(np.float64)
    top = 1.0 if dtype.startswith("float") else float(np.iinfo(dtype).max)
    assert np.allclose(samples[:, :, 3], top)  # opaque
    ids = np.frombuffer(labels.data, np.int32).reshape(60, 80)
    for region in np.unique(ids):  # one flat colour per region
        assert len(np.unique(samples[ids == region][:, :3], axis=0)) == 1


def test_half_float_images(engine_client):
    pixels = textured(HEIGHT, WIDTH, 4).astype(np.float16)
    source, target = _edit()
    result = engine_client.manipulate(Image(pixels.tobytes(), WIDTH, HEIGHT, 4, "float16"),
                                      source_mask=mask_buffer(source.tobytes(), WIDTH, HEIGHT),
                                      target_mask=mask_buffer(target.tobytes(), WIDTH, HEIGHT))
    direct = manipulate_masks(pixels.astype(np.float32), source / 255.0, target / 255.0)
    out = np.frombuffer(result.data, np.float16).reshape(HEIGHT, WIDTH, 4)
    assert result.dtype == "float16" and np.abs(out.astype(np.float32) - direct).max() < 2e-3


def test_artist_facing_errors_and_the_worker_keeps_serving(engine_client):
    pixels = _as_uint8(textured(HEIGHT, WIDTH))
    source, target = _edit()
    image = Image(pixels.tobytes(), WIDTH, HEIGHT, 3)
    cases = [
        (dict(source_mask=mask_buffer(bytes(WIDTH * HEIGHT), WIDTH, HEIGHT), target_mask=mask_buffer(target.tobytes(), WIDTH, HEIGHT)), "The source mask is empty"),
        (dict(source_mask=mask_buffer(source.tobytes(), WIDTH, HEIGHT)), "Give either"),
        (dict(source_mask=mask_buffer(source[:, :60].tobytes(), 60, HEIGHT), target_mask=mask_buffer(target.tobytes(), WIDTH, HEIGHT)), "60x90 but the exemplar is 120x90"),
        (dict(source_mask=mask_buffer(source.tobytes(), WIDTH, HEIGHT), target_mask=mask_buffer(target.tobytes(), WIDTH, HEIGHT), model="nope"), "Unknown model .nope."),
    ]
    for edit, message in cases:
        with pytest.raises(EngineError, match=message) as caught:
            engine_client.manipulate(image, **edit)
        assert caught.value.code == "invalid_input"
    nan = textured(HEIGHT, WIDTH)
    nan[3, 3, 0] = np.nan
    with pytest.raises(EngineError, match="NaN"):
        engine_client.manipulate(Image(nan.tobytes(), WIDTH, HEIGHT, 3, "float32"),
                                 source_mask=mask_buffer(source.tobytes(), WIDTH, HEIGHT),
                                 target_mask=mask_buffer(target.tobytes(), WIDTH, HEIGHT))
    assert engine_client.hello()["pid"] == engine_client.pid


def _raw_worker():
    return subprocess.Popen(worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _frame(header: dict, payload: bytes = b"") -> bytes:
    body = json.dumps(header).encode()
    return protocol.MAGIC + struct.pack(">I", len(body)) + body + payload


def test_hostile_frames_get_errors_and_the_worker_keeps_serving():
    worker = _raw_worker()
    hello = _frame({"protocol": 1, "id": 99, "op": "hello", "params": {}, "buffers": []})
    hostile = [
        b"garbage that is not a frame",
        protocol.MAGIC + struct.pack(">I", 1 << 30),  # a 1 GiB header
        protocol.MAGIC + struct.pack(">I", 5) + b"{nope",
        protocol.MAGIC + struct.pack(">I", 2) + b"[]",
        _frame({"protocol": 1, "id": 1, "op": "hello", "buffers": [{"name": "a", "shape": [2, 2], "dtype": "uint8", "nbytes": 5}]}, b"12345"),
        _frame({"protocol": 1, "id": 2, "op": "hello", "buffers": [{"name": "a", "shape": [1], "dtype": "object", "nbytes": 8}]}, b"8 bytes!"),
        _frame({"protocol": 1, "id": 3, "op": "hello", "buffers": [{"name": "a", "shape": [1 << 40], "dtype": "uint8", "nbytes": 1 << 40}]}),
        _frame({"protocol": 2, "id": 4, "op": "hello", "buffers": []}),
        _frame({"protocol": 1, "id": 5, "op": "exec", "params": {"code": "import os"}, "buffers": []}),
        _frame({"protocol": 1, "id": 6, "op": "manipulate", "params": [], "buffers": []}),
        _frame({"protocol": 1, "id": 7, "op": "manipulate", "params": {}, "buffers": []}),
    ]
    out, _ = worker.communicate(b"".join(hostile) + hello, timeout=60)
    stream = io.BytesIO(out)
    replies = []
    while True:
        try:
            replies.append(protocol.read_frame(stream, 1 << 30).header)
        except EOFError:
            break
    codes = [r.get("code") for r in replies if r["type"] == "error"]
    assert {"bad_magic", "header_too_large", "bad_header", "bad_buffers", "protocol_version", "unknown_op", "bad_request",
            "invalid_input"} <= set(codes)
    # every hostile frame got its own error, in order, and the hello after them its answer
    # (parameters that are not an object break the request's schema: bad_request)
    assert codes == ["bad_magic", "header_too_large", "bad_header", "bad_header", "bad_buffers", "bad_buffers",
                     "too_large", "protocol_version", "unknown_op", "bad_request", "invalid_input"]
    assert replies[-1]["id"] == 99 and replies[-1]["type"] == "result"
    assert worker.returncode == 0  # served to the end of its input


needs_shm = pytest.mark.skipif(protocol.SharedFolder.create() is None, reason="no writable /dev/shm")


@needs_shm
def test_large_buffers_cross_through_shared_memory_and_leave_nothing(tmp_path):
    client = Client(worker_command())
    try:
        assert client.hello()["shared_memory"] is True
        folder = client._shared.path
        height, width = 300, 400  # 480 KB of RGBA: inline; the float copy (1.9 MB) goes by file
        exemplar, figure = textured(height, width, 4), square_mask(height, width, 40, 50, 60)
        target = square_mask(height, width, 150, 120, 60)
        expected = manipulate_masks(exemplar, figure.astype(np.float32), target.astype(np.float32))
        sent = []
        original = protocol.SharedFolder.write
        protocol.SharedFolder.write = lambda self, name, data: sent.append(name) or original(self, name, data)
        try:
            result = client.manipulate(Image(exemplar.tobytes(), width, height, 4, "float32"),
                                       source_mask=mask_buffer((figure * 255).astype(np.uint8).tobytes(), width, height),
                                       target_mask=mask_buffer((target * 255).astype(np.uint8).tobytes(), width, height))
        finally:
            protocol.SharedFolder.write = original
        assert len(sent) == 1 and sent[0].endswith("-0.buf")  # the exemplar; the masks were small enough for the pipe
        assert isinstance(result.data, mmap.mmap)  # the reply came back the same way
        got = np.frombuffer(result.data, np.float32).reshape(height, width, 4)
        assert np.array_equal(got, expected)
        assert os.listdir(folder) == []  # each side removed what it read
    finally:
        client.close()
    assert not os.path.exists(folder)


def _shared_worker(folder):
    env = dict(os.environ, **{protocol.SHARED_DIR_VARIABLE: str(folder)})
    return subprocess.Popen(worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)


def test_shared_buffers_are_only_plain_files_of_the_declared_size(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o700)
    (folder / "ok-0.buf").write_bytes(b"1234")
    (tmp_path / "secret.buf").write_bytes(b"1234")
    (folder / "link-0.buf").symlink_to(tmp_path / "secret.buf")
    (folder / "dir-0.buf").mkdir()

    def hello_with(file, nbytes=4):
        spec = {"name": "a", "shape": [nbytes], "dtype": "uint8", "nbytes": nbytes, "file": file}
        return _frame({"protocol": 1, "id": 1, "op": "hello", "params": {}, "buffers": [spec]})

    frames = [hello_with(name) for name in ("../secret.buf", "/etc/passwd", "link-0.buf", "dir-0.buf", "gone-0.buf")]
    frames += [hello_with("ok-0.buf", 5), hello_with("ok-0.buf")]
    worker = _shared_worker(folder)
    out, _ = worker.communicate(b"".join(frames), timeout=60)
    stream, replies = io.BytesIO(out), []
    while True:
        try:
            replies.append(protocol.read_frame(stream, 1 << 30).header)
        except EOFError:
            break
    assert [r.get("code") for r in replies] == ["bad_buffers"] * 6 + [None]
    assert replies[-1]["params"]["shared_memory"] is True
    assert (tmp_path / "secret.buf").read_bytes() == b"1234" and (folder / "ok-0.buf").exists()


def test_a_folder_others_may_enter_is_not_used(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    worker = _shared_worker(folder)
    out, _ = worker.communicate(_frame({"protocol": 1, "id": 1, "op": "hello", "params": {}, "buffers": []}), timeout=60)
    assert protocol.read_frame(io.BytesIO(out), 1 << 20).header["params"]["shared_memory"] is False


def test_truncated_stream_ends_the_worker_cleanly():
    worker = _raw_worker()
    frame = _frame({"protocol": 1, "id": 1, "op": "hello", "buffers": [{"name": "a", "shape": [100], "dtype": "uint8", "nbytes": 100}]}, b"only 20 of 100 bytes")
    worker.communicate(frame, timeout=30)
    assert worker.returncode == 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_decoder_fuzz_raises_only_protocol_errors(data):
    stream = io.BytesIO(protocol.MAGIC + data)
    while True:
        try:
            protocol.read_frame(stream, 1 << 20)
        except EOFError:
            return
        except protocol.FrameError as problem:
            if problem.resync:
                try:
                    protocol.resync(stream)
                except EOFError:
                    return
                stream.seek(stream.tell() - len(protocol.MAGIC))


buffer_strategy = st.tuples(
    st.sampled_from(sorted(protocol.ITEM_SIZES)), st.lists(st.integers(0, 5), min_size=1, max_size=3)
)


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), buffer_strategy, max_size=4),
       st.dictionaries(st.text(max_size=10), st.one_of(st.integers(-(1 << 62), 1 << 62), st.text(max_size=20), st.booleans()),
                       max_size=5))
def test_frames_round_trip(specs, params):
    buffers = {}
    for name, (dtype, shape) in specs.items():
        count = int(np.prod(shape))
        buffers[name] = Buffer(bytes(range(256)) * (count * protocol.ITEM_SIZES[dtype] // 256 + 1), tuple(shape), dtype)
        buffers[name].data = buffers[name].data[: count * protocol.ITEM_SIZES[dtype]]
    stream = io.BytesIO(b"".join(bytes(p) for p in protocol.encode_frame({"id": 1, "op": "x", "params": params}, buffers)))
    frame = protocol.read_frame(stream, 1 << 20)
    assert frame.header["params"] == params
    assert {n: (bytes(b.data), b.shape, b.dtype) for n, b in frame.buffers.items()} == {
        n: (bytes(b.data), b.shape, b.dtype) for n, b in buffers.items()
    }


def _big_job(engine_client, size=2048, on_id=None, progress=None):
    pixels = _as_uint8(textured(size, size, 4))
    labels = np.zeros((size, size), np.int32)
    labels[size // 8 : size // 2, size // 8 : size // 2] = 1
    moved = np.zeros_like(labels)
    moved[size // 3 : size * 3 // 4, size // 3 : size * 3 // 4] = 1
    return engine_client.manipulate(Image(pixels.tobytes(), size, size, 4),
                                    exemplar_regions=labels_buffer(labels.tobytes(), size, size),
                                    target_regions=labels_buffer(moved.tobytes(), size, size),
                                    on_id=on_id, progress=progress)


def test_cancel_mid_job_takes_effect_within_a_second(engine_client):
    engine_client.hello()
    ids, started, outcome = [], threading.Event(), {}

    def job():
        try:
            _big_job(engine_client, on_id=ids.append, progress=lambda s, f: started.set())
            outcome["error"] = None
        except EngineError as error:
            outcome["error"] = error
            outcome["at"] = time.monotonic()

    thread = threading.Thread(target=job)
    thread.start()
    assert started.wait(60)
    cancelled_at = time.monotonic()
    engine_client.cancel(ids[0])
    thread.join(60)
    assert outcome["error"] is not None and outcome["error"].code == "cancelled"
    assert outcome["at"] - cancelled_at < 1.0
    assert engine_client.hello()  # still serving


def test_killed_worker_is_reported_and_the_next_call_starts_a_new_one(engine_client):
    first = engine_client.hello()["pid"]
    started, outcome = threading.Event(), {}

    def job():
        try:
            _big_job(engine_client, progress=lambda s, f: started.set())
        except EngineError as error:
            outcome["error"] = error

    thread = threading.Thread(target=job)
    thread.start()
    assert started.wait(60)
    os.kill(first, signal.SIGKILL)
    thread.join(30)
    assert outcome["error"].code == "worker_crashed"
    assert "stopped unexpectedly" in outcome["error"].message and "exit code -9" in outcome["error"].details
    assert engine_client.hello()["pid"] not in (None, first)
    if engine_client._shared is not None:  # the 2048 px job's buffers went by file: none is left
        assert os.listdir(engine_client._shared.path) == []


def _resident_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
def test_an_idle_worker_gives_its_job_memory_back():
    from engine.app.memory import _glibc
    from engine.app.worker import RELEASE_AFTER

    if _glibc() is None:
        pytest.skip("not glibc: freed memory is returned at once")
    client = Client(worker_command())
    try:
        _big_job(client)
        after_job = _resident_mb(client.pid)
        time.sleep(RELEASE_AFTER + 1.5)
        assert after_job - _resident_mb(client.pid) > 100  # the 2048 px job's temporaries
        assert client.hello()["pid"]  # and it still serves
    finally:
        client.close()


def test_concurrent_requests_from_one_client(engine_client):
    pixels = [_as_uint8(textured(HEIGHT, WIDTH, 3, seed=s)) for s in range(4)]
    source, target = _edit()
    results = {}

    def job(index):
        results[index] = engine_client.manipulate(Image(pixels[index].tobytes(), WIDTH, HEIGHT, 3),
                                                  source_mask=mask_buffer(source.tobytes(), WIDTH, HEIGHT),
                                                  target_mask=mask_buffer(target.tobytes(), WIDTH, HEIGHT))

    threads = [threading.Thread(target=job, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for index in range(4):
        direct = manipulate_masks(pixels[index] / np.float32(255), source / 255.0, target / 255.0)
        assert np.array_equal(np.frombuffer(results[index].data, np.uint8).reshape(HEIGHT, WIDTH, 3), _as_uint8(direct))


def test_idle_worker_exits_and_the_client_starts_another():
    client = Client(worker_command()[:-1] + ["worker", "--idle-timeout", "0.5"])
    try:
        first = client.hello()["pid"]
        deadline = time.monotonic() + 20
        while client.pid is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.pid is None
        assert client.hello()["pid"] != first
    finally:
        client.close()


def test_missing_interpreter_is_an_engine_error():
    with pytest.raises(EngineError, match="could not be started") as caught:
        Client(["/nonexistent/python", "-m", "engine", "worker"]).hello()
    assert caught.value.code == "worker_missing"


def test_client_module_needs_only_the_standard_library(tmp_path):
    # as the GIMP plug-in vendors it: a copy of the link folder on the path, in a Python without site-packages
    shutil.copytree(REPO / "engine" / "link", tmp_path / "link")
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); from link import client; "
        "client.Client(client.worker_command()); "
        "assert not {'numpy', 'cv2', 'engine'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-S", "-c", code], check=True)


def test_worker_listens_on_no_port(engine_client):
    pid = engine_client.hello()["pid"]
    sockets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    assert not [s for s in sockets if s.startswith("socket:")]


def test_painted_colour_maps_and_display_previews(engine_client):
    pixels = (textured(HEIGHT, WIDTH, 4) * 65535).astype(np.uint16)
    red, white = (65535, 0, 0, 65535), (65535, 65535, 65535, 65535)
    exemplar_map = np.empty((HEIGHT, WIDTH, 4), np.uint16)
    exemplar_map[:] = white
    exemplar_map[square_mask(HEIGHT, WIDTH, 10, 20, 25)] = red
    target_map = np.empty_like(exemplar_map)
    target_map[:] = white
    target_map[square_mask(HEIGHT, WIDTH, 70, 30, 30)] = red
    as_image = lambda a: Image(a.tobytes(), WIDTH, HEIGHT, 4, "uint16")  # noqa: E731
    result = engine_client.manipulate(as_image(pixels), exemplar_map=as_image(exemplar_map), target_map=as_image(target_map))
    labels = square_mask(HEIGHT, WIDTH, 10, 20, 25).astype(np.int32)
    direct = manipulate(pixels / np.float32(65535), labels, square_mask(HEIGHT, WIDTH, 70, 30, 30).astype(np.int32))
    got = np.frombuffer(result.data, np.uint16).reshape(HEIGHT, WIDTH, 4)
    assert np.abs(got / 65535.0 - direct).max() <= 1 / 65535 + 1e-6
    preview = engine_client.preview(as_image(pixels), max_side=60, for_display=True,
                                    exemplar_map=as_image(exemplar_map), target_map=as_image(target_map))
    assert (preview.width, preview.height, preview.channels, preview.dtype) == (60, 45, 4, "uint8")
    with pytest.raises(EngineError, match="Give either"):
        engine_client.manipulate(as_image(pixels), exemplar_map=as_image(exemplar_map),
                                 source_mask=mask_buffer(bytes(WIDTH * HEIGHT), WIDTH, HEIGHT))


def test_display_preview_keeps_straight_alpha(engine_client):
    pixels = _as_uint8(textured(HEIGHT, WIDTH, 4))
    pixels[..., 3] = 128  # half transparent everywhere
    source, target = _edit()
    edit = dict(source_mask=mask_buffer(source.tobytes(), WIDTH, HEIGHT), target_mask=mask_buffer(target.tobytes(), WIDTH, HEIGHT))
    image = Image(pixels.tobytes(), WIDTH, HEIGHT, 4)
    shown = engine_client.preview(image, max_side=60, for_display=True, **edit)
    plain = engine_client.preview(image, max_side=60, **edit)
    # the same straight RGBA: alpha is carried once, not also composited into the colours
    assert np.frombuffer(shown.data, np.uint8).tolist() == np.frombuffer(plain.data, np.uint8).tolist()
    grey = textured(HEIGHT, WIDTH, 1)
    shown = engine_client.preview(Image(grey.tobytes(), WIDTH, HEIGHT, 1, "float32"), max_side=60, for_display=True, **edit)
    samples = np.frombuffer(shown.data, np.uint8).reshape(shown.height, shown.width, 4)
    assert shown.channels == 4 and (samples[..., 3] == 255).all()
    assert (samples[..., 0] == samples[..., 1]).all() and (samples[..., 1] == samples[..., 2]).all()


def test_the_plugins_name_models_in_plain_words():
    from engine.link.client import model_choices

    assert model_choices(["moments", "simnet-small"], "simnet-small") == [
        ("simnet-small", "Learned (SIM-Net, default)"), ("moments", "Fast baseline")]
    assert model_choices(["moments", "simnet-small", "mine"], "moments") == [
        ("moments", "Fast baseline (default)"), ("mine", "Learned (mine)"), ("simnet-small", "Learned (simnet-small)")]


def test_a_kept_edit_replays_on_more_layers_as_the_engine_does(engine_client):
    from engine import apply, solve
    from engine.edit import from_masks

    pixels = _as_uint8(textured(HEIGHT, WIDTH, 4))
    source, target = _edit()
    masks = dict(source_mask=mask_buffer(source.tobytes(), WIDTH, HEIGHT),
                 target_mask=mask_buffer(target.tobytes(), WIDTH, HEIGHT))
    engine_client.manipulate(Image(pixels.tobytes(), WIDTH, HEIGHT, 4), model="moments", keep_edit=True, **masks)
    kept = engine_client.last_edit
    assert type(kept) is int
    solved = solve(pixels / np.float32(255), from_masks((HEIGHT, WIDTH), source / 255.0, target / 255.0), "moments")
    for seed, dtype, order in ((3, "uint8", "rgba"), (4, "uint16", "bgra")):
        layer = textured(HEIGHT, WIDTH, 4, seed=seed)
        samples = to_samples(layer, dtype, order)
        replayed = engine_client.replay(kept, Image(samples.tobytes(), WIDTH, HEIGHT, 4, dtype), channel_order=order)
        assert replayed.dtype == dtype
        got = np.frombuffer(replayed.data, np.dtype(dtype)).reshape(HEIGHT, WIDTH, 4)
        held = samples[:, :, [2, 1, 0, 3]] if order == "bgra" else samples
        expected = to_samples(apply(solved, held / np.float32(np.iinfo(dtype).max)), dtype, order)
        assert np.array_equal(got, expected)
    # a preview keeps nothing, and a new kept edit replaces the old one
    with pytest.raises(EngineError, match="no longer holds that edit") as caught:
        engine_client.manipulate(Image(pixels.tobytes(), WIDTH, HEIGHT, 4), model="moments", keep_edit=True, **masks)
        engine_client.replay(kept, Image(pixels.tobytes(), WIDTH, HEIGHT, 4))
    assert caught.value.code == "invalid_input"
    with pytest.raises(EngineError, match="edit was solved on a 120x90 image"):
        engine_client.replay(engine_client.last_edit, Image(pixels[:45].tobytes(), WIDTH, 45, 4))
    with pytest.raises(EngineError) as caught:
        engine_client.replay("1", Image(pixels.tobytes(), WIDTH, HEIGHT, 4))
    assert caught.value.code == "bad_request"
    assert engine_client.hello()["pid"] == engine_client.pid


def test_a_preview_comes_with_the_painting_beside_it_and_the_box_of_the_edit(engine_client):
    import cv2

    pixels = _as_uint8(textured(400, 600, 4))
    source, target = _edit(400, 600)  # the part at (10, 20), 25 px, into (70, 30), 30 px
    preview = engine_client.compare_preview(
        Image(pixels.tobytes(), 600, 400, 4), max_side=300, for_display=True, model="moments",
        source_mask=mask_buffer(source.tobytes(), 600, 400), target_mask=mask_buffer(target.tobytes(), 600, 400))
    assert (preview.before.width, preview.before.height, preview.before.dtype) == (300, 200, "uint8")
    before = np.frombuffer(preview.before.data, np.uint8).reshape(200, 300, 4)
    shrunk = cv2.resize(pixels.astype(np.float32) / 255, (300, 200), interpolation=cv2.INTER_AREA)
    assert np.abs(before / 255.0 - shrunk).max() <= 1 / 255 + 1e-6  # the painting, as the preview shrank it
    x0, y0, x1, y1 = preview.edit_box
    assert x0 <= 5 and y0 <= 10 and x1 >= 50 and y1 >= 30 and x1 < 80 and y1 < 60  # both places, at half size
    after = np.frombuffer(preview.after.data, np.uint8).reshape(200, 300, 4)
    assert np.array_equal(after[y1:], before[y1:]) and np.array_equal(after[:, x1:], before[:, x1:])


def test_the_zoomed_part_holds_the_edit_in_the_previews_proportions():
    from engine.link.client import Preview

    image = Image(bytes(300 * 200 * 4), 300, 200, 4)
    part = Preview(image, image, (100, 50, 140, 90)).zoomed_part()
    x, y, w, h = part
    assert x <= 100 and y <= 50 and x + w >= 140 and y + h >= 90  # the whole edit...
    assert abs(w / h - 1.5) < 0.05 and w < 150  # ...in the preview's shape, closer than the whole
    assert Preview(image, image, (0, 0, 300, 200)).zoomed_part() == (0, 0, 300, 200)  # never beyond the picture
    assert Preview(image, image, (290, 190, 300, 200)).zoomed_part()[0] + Preview(image, image, (290, 190, 300, 200)).zoomed_part()[2] <= 300
    assert Preview(image, image, None).zoomed_part() is None
