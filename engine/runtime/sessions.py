"""ONNX Runtime: exported SIM-Net graphs checked, loaded once per process, run on the best
device that actually works.

- Model folders hold a `card.json` (see export/onnx_export.py), checked against a schema in one
  place (`check_card`): every graph a plain file name inside the folder, with its sha256; the
  sizes the engine feeds the graphs in range. A graph is read once, its bytes hashed and the
  session made from those same bytes, so what runs is what was checked; a graph that would load
  tensors from other files (ONNX external data) is refused, since the card covers only the graph.
  A graph whose inputs or outputs do not fit the card, and a graph that fails while it runs, are
  clear errors too.
- Providers are tried in order TensorRT, CUDA, DirectML, CoreML, CPU, among those this
  onnxruntime build has and the caller allows. ONNX Runtime lists CUDA even when its libraries
  cannot load and then silently runs on the CPU, so the provider reported is the one the session
  says it runs (`session.get_providers()`), and a fallback is reported as such.
- GPU sessions run the fp16 graphs; CPU sessions the fp32 ones.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from ..errors import InputError
from ..threads import thread_count

CARD = "card.json"
CARD_LIMIT = 1 << 20  # bytes; a real card is under 10 KB
# The graphs' interface (export/onnx_export.py); 2: priors in, K + 2 motions out.
MODEL_FORMAT = 2
GRAPHS = ("keypoints", "transport")
PRECISIONS = ("fp32", "fp16")
KEYPOINT_INPUTS = ("masks", "priors")
KEYPOINT_OUTPUTS = ("keypoints", "jacobians")
TRANSPORT_INPUTS = ("exemplar", "source_mask", "target_mask", "prior", "keypoints_aligned", "jacobians_aligned",
                    "keypoints_tgt", "jacobians_tgt")
TRANSPORT_OUTPUTS = ("weights", "mask", "colour_matrix", "luma_offset")
WORK_SIZES = (16, 1024)  # pixels, the range of working sizes a card may name
MAX_KEYPOINTS = 64
PROVIDER_ORDER = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "DmlExecutionProvider",
    "CoreMLExecutionProvider",
    "CPUExecutionProvider",
)
GPU_PROVIDERS = {"TensorrtExecutionProvider", "CUDAExecutionProvider", "DmlExecutionProvider"}
DEVICES = ("auto", "cpu", "cuda")

_lock = threading.Lock()
_sessions: dict[tuple, Graphs] = {}


def onnxruntime():
    try:
        import onnxruntime as ort
    except ImportError:
        raise InputError(
            "the learned models need ONNX Runtime: pip install 'simnet-manipulate[cpu]' (or [gpu] on NVIDIA)"
        ) from None
    return ort


def read_card(folder: Path) -> dict:
    """The model card of `folder`, checked (`check_card`)."""
    path = Path(folder) / CARD
    try:
        with path.open("rb") as file:
            data = file.read(CARD_LIMIT + 1)
    except FileNotFoundError:
        raise InputError(f"{folder} holds no model card ({CARD}): not an exported SIM-Net model") from None
    except OSError as error:
        raise InputError(f"the model card {path} cannot be read ({error.strerror})") from None
    if len(data) > CARD_LIMIT:
        raise InputError(f"the model card {path} is over {CARD_LIMIT} bytes: not a SIM-Net model card")
    try:
        card = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError) as error:
        raise InputError(f"the model card {path} is damaged ({str(error)[:200]}); reinstall the model") from None
    check_card(card, Path(folder))
    return card


def check_card(card, folder: Path) -> None:
    """The card's schema: what the engine reads from it, each of its type and in range."""
    path = folder / CARD

    def refuse(problem: str) -> NoReturn:
        raise InputError(f"{path} is not a usable SIM-Net model card: {problem}")

    if not isinstance(card, dict) or "graphs" not in card or "sha256" not in card:
        raise InputError(f"{path} is not a SIM-Net model card")
    if card.get("format") != MODEL_FORMAT:
        raise InputError(
            f"the model in {folder} was exported in format {card.get('format')!r:.40}, but this engine runs format "
            f"{MODEL_FORMAT}: export its checkpoint again with this version (simnet export)"
        )
    graphs, hashes, config = card["graphs"], card["sha256"], card.get("config")
    if not isinstance(graphs, dict) or not isinstance(hashes, dict):
        refuse("'graphs' and 'sha256' must be objects")
    for graph in GRAPHS:
        files = graphs.get(graph)
        if not isinstance(files, dict):
            refuse(f"it names no {graph} graph")
        for precision in PRECISIONS:
            name = files.get(precision)
            if not isinstance(name, str) or not _plain_file_name(name):
                refuse(f"the {graph} graph ({precision}) must be a plain file name in the model folder")
            digest = hashes.get(name)
            if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
                refuse(f"it lists no sha256 for {name}")
    if not isinstance(config, dict):
        refuse("it has no 'config'")
    for key, (low, high) in {"work_size": WORK_SIZES, "keypoints": (1, MAX_KEYPOINTS)}.items():
        value = config.get(key)
        if type(value) is not int or not low <= value <= high:
            refuse(f"config.{key} must be a whole number from {low} to {high}, not {str(value)[:40]}")


def _plain_file_name(name: str) -> bool:
    """A name that stays in its folder: no separator, no `..`, not hidden, not absolute."""
    return (0 < len(name) <= 255 and name == Path(name).name and not name.startswith(".")
            and "/" not in name and "\\" not in name and "\0" not in name)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_verified(folder: Path, name: str, expected: str) -> bytes:
    """The bytes of the graph file `name` in `folder`, checked against `expected` (its sha256)
    and refused if it would load ONNX external data (other files no checksum covers)."""
    path = Path(folder) / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"the model file {path} is missing; reinstall the model") from None
    except OSError as error:
        raise InputError(f"the model file {path} cannot be read ({error.strerror})") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise InputError(f"the model file {path} is damaged (its checksum does not match the model card); reinstall the model")
    if uses_external_data(data):
        raise InputError(f"the model file {path} loads tensors from other files (ONNX external data), which its card "
                         "does not cover: export the model again as one file")
    return data


def verified_session(ort, folder: Path, name: str, expected: str, providers: list[str]):
    """An ONNX Runtime session of the checked graph bytes (`read_verified`)."""
    data = read_verified(folder, name, expected)
    try:
        return ort.InferenceSession(data, session_options(ort), providers=providers)
    except Exception as error:  # ONNX Runtime raises its own types for unreadable graphs
        raise InputError(f"ONNX Runtime cannot load {Path(folder) / name}: {str(error).splitlines()[0][:300]}") from None


# Where TensorProtos sit in an ONNX ModelProto, by protobuf field number: message kind -> {field:
# kind of the message it holds}. A TensorProto's field 14 (data_location) is 1 for external data,
# and field 13 lists where that data lives.
_ONNX_FIELDS = {
    "model": {7: "graph", 25: "function"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "function": {7: "node"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {},
}


def uses_external_data(model: bytes) -> bool:
    """Whether any tensor of the serialised ONNX model (initialisers, constants, sparse tensors,
    in subgraphs and functions too) keeps its data outside the file. Raises InputError for bytes
    that are not a well-formed protobuf message."""
    view = memoryview(model)
    pending = [("model", 0, len(view))]
    while pending:
        kind, start, end = pending.pop()
        position = start
        while position < end:
            key, position = _varint(view, position, end)
            field, wire = key >> 3, key & 7
            if wire == 0:
                value, position = _varint(view, position, end)
                if kind == "tensor" and field == 14 and value == 1:
                    return True
            elif wire == 2:
                length, position = _varint(view, position, end)
                if position + length > end:
                    raise InputError("the model file is not a well-formed ONNX graph (a field runs past its end)")
                if kind == "tensor" and field == 13:
                    return True
                inner = _ONNX_FIELDS[kind].get(field)
                if inner is not None:
                    pending.append((inner, position, position + length))
                position += length
            elif wire in (1, 5):
                position += 8 if wire == 1 else 4
            else:
                raise InputError("the model file is not a well-formed ONNX graph (an unknown field type)")
        if position != end:
            raise InputError("the model file is not a well-formed ONNX graph (a field runs past its end)")
    return False


def _varint(view: memoryview, position: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= end or shift > 63:
            raise InputError("the model file is not a well-formed ONNX graph (a damaged number)")
        byte = view[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def choose_providers(device: str, available: list[str]) -> list[str]:
    """The providers to ask for, best first: `device` "cpu" -> CPU only; "cuda" -> the NVIDIA
    ones (then CPU); "auto" -> every accelerated one this build has, then CPU."""
    if device not in DEVICES:
        raise InputError(f"unknown device '{device}'; choose one of: {', '.join(DEVICES)}")
    wanted = {
        "cpu": {"CPUExecutionProvider"},
        "cuda": {"TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"},
        "auto": set(PROVIDER_ORDER),
    }[device]
    chosen = [p for p in PROVIDER_ORDER if p in wanted and p in available]
    return chosen or ["CPUExecutionProvider"]


@dataclass
class Graphs:
    """The two sessions of one model on one device, and what actually runs them."""

    keypoints: object
    transport: object
    provider: str  # the provider the sessions report first
    precision: str  # "fp32" or "fp16"
    note: str  # empty, or why the device asked for is not the one used

    @property
    def on_gpu(self) -> bool:
        return self.provider in GPU_PROVIDERS


def load_graphs(folder: Path, device: str = "auto") -> Graphs:
    """Verified, cached sessions of the model in `folder` for `device`."""
    folder = Path(folder).resolve()
    key = (str(folder), device)
    with _lock:
        if key in _sessions:
            return _sessions[key]
        card = read_card(folder)
        ort = onnxruntime()
        providers = choose_providers(device, ort.get_available_providers())
        graphs = _open(folder, card, ort, providers, "fp16" if providers[0] in GPU_PROVIDERS else "fp32")
        if graphs.provider not in GPU_PROVIDERS and graphs.precision == "fp16":
            # The GPU provider did not load: run the fp32 graphs on the CPU instead.
            graphs = _open(folder, card, ort, ["CPUExecutionProvider"], "fp32")
        if device == "cuda" and not graphs.on_gpu:
            graphs.note = "CUDA was asked for but is not usable here (no GPU, or its libraries do not load): running on the CPU"
        _sessions[key] = graphs
        return graphs


def session_options(ort):
    """The options of every session the engine opens."""
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only; warnings about constant folding are noise
    options.intra_op_num_threads = thread_count()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Threads that spin between calls compete with the numpy and OpenCV work done in between.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _open(folder: Path, card: dict, ort, providers: list[str], precision: str) -> Graphs:
    names = [card["graphs"][g][precision] for g in GRAPHS]
    sessions = [verified_session(ort, folder, name, card["sha256"][name], providers) for name in names]
    _check_interface(folder, card, sessions)
    actual = sessions[0].get_providers()[0]
    return Graphs(sessions[0], sessions[1], actual, precision, "")


def _check_interface(folder: Path, card: dict, sessions) -> None:
    """The graphs take and give what the engine feeds and reads, at the card's sizes."""
    s, k = card["config"]["work_size"], card["config"]["keypoints"]
    expected = [
        (KEYPOINT_INPUTS, KEYPOINT_OUTPUTS, {"masks": [1, s, s]}, {"keypoints": [k, 2]}),
        (TRANSPORT_INPUTS, TRANSPORT_OUTPUTS, {"exemplar": [3, s, s]}, {"mask": [1, s, s]}),
    ]
    for graph, session, (inputs, outputs, input_sizes, output_sizes) in zip(GRAPHS, sessions, expected):
        given = {i.name: i.shape for i in session.get_inputs()}
        made = {o.name: o.shape for o in session.get_outputs()}
        problem = None
        if set(given) != set(inputs):
            problem = f"its inputs are {sorted(given)}, not {sorted(inputs)}"
        elif not set(outputs) <= set(made):
            problem = f"its outputs {sorted(made)} lack {sorted(set(outputs) - set(made))}"
        else:
            for name, size in [*((n, (given[n], v)) for n, v in input_sizes.items()),
                               *((n, (made[n], v)) for n, v in output_sizes.items())]:
                shape, wanted = size
                fixed = [d for d in shape[1:] if isinstance(d, int)]
                if len(shape) != len(wanted) + 1 or (len(fixed) == len(wanted) and fixed != wanted):
                    problem = f"{name} has shape {shape}, but the card's sizes need [batch, {', '.join(map(str, wanted))}]"
                    break
        if problem:
            raise InputError(f"the {graph} graph of {folder} does not fit its card: {problem}; export the model again")


def run_graph(session, feeds: dict, what: str) -> list:
    """`session.run` with a failure inside the graph (a shape it cannot take, say) as a clear error."""
    try:
        return session.run(None, feeds)
    except Exception as error:  # ONNX Runtime raises its own types
        raise InputError(f"the model's {what} graph failed while it ran ({str(error).splitlines()[0][:300]}): "
                         "the model does not fit this engine; export it again") from None


class OnnxBackend:
    """SIM-Net's two graphs behind plain numpy calls: engine.runtime.backend.Backend.
    On a GPU the transport graph runs through IO binding: its eight inputs are copied to the
    device in one go and its outputs fetched once."""

    def __init__(self, folder: Path, device: str = "auto"):
        self.folder = Path(folder)
        self.card = read_card(self.folder)
        self.graphs = load_graphs(self.folder, device)
        self.work_size = int(self.card["config"]["work_size"])

    def keypoints(self, masks: np.ndarray, priors: np.ndarray) -> tuple[np.ndarray, ...]:
        """See engine.runtime.backend.Backend."""
        return tuple(run_graph(self.graphs.keypoints, dict(zip(KEYPOINT_INPUTS, (masks, priors))), "keypoint"))

    def transport(self, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        """See engine.runtime.backend.Backend."""
        feeds = dict(zip(TRANSPORT_INPUTS, inputs, strict=True))
        if not self.graphs.on_gpu:
            return tuple(run_graph(self.graphs.transport, feeds, "transport"))
        return self._run_bound(feeds)

    def _run_bound(self, feeds):
        """GPU: inputs copied to the device once, outputs fetched once (IO binding)."""
        session = self.graphs.transport
        binding = session.io_binding()
        for name, array in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array, np.float32))
        for output in session.get_outputs():
            binding.bind_output(output.name, "cpu")
        session.run_with_iobinding(binding)
        return tuple(binding.copy_outputs_to_cpu())
