"""ONNX Runtime: exported SIM-Net graphs checked, loaded once per process, run on the best
device that actually works.

- Model folders hold a `card.json` (see export/onnx_export.py) with the sha256 of every graph:
  a file that does not match (damaged, truncated, replaced) is refused with a clear message.
- Providers are tried in order TensorRT, CUDA, DirectML, CoreML, CPU, among those this
  onnxruntime build has and the caller allows. ONNX Runtime lists CUDA even when its libraries
  cannot load and then silently runs on the CPU, so the provider reported is the one the session
  says it runs (`session.get_providers()`), and a fallback is reported as such.
- GPU sessions run the fp16 graphs; CPU sessions the fp32 ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

CARD = "card.json"
# The graphs' interface (export/onnx_export.py); 2: priors in, K + 2 motions out.
MODEL_FORMAT = 2
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
_sessions: dict[tuple, "Graphs"] = {}
_verified: dict[tuple, bool] = {}


def onnxruntime():
    try:
        import onnxruntime as ort
    except ImportError:
        raise InputError(
            "the learned models need ONNX Runtime: pip install 'simnet-manipulate[cpu]' (or [gpu] on NVIDIA)"
        ) from None
    return ort


def read_card(folder: Path) -> dict:
    path = Path(folder) / CARD
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{folder} holds no model card ({CARD}): not an exported SIM-Net model") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"the model card {path} is damaged ({error}); reinstall the model") from None
    if not isinstance(card, dict) or "graphs" not in card or "sha256" not in card:
        raise InputError(f"{path} is not a SIM-Net model card")
    if card.get("format") != MODEL_FORMAT:
        raise InputError(
            f"the model in {folder} was exported in format {card.get('format')!r}, but this engine runs format "
            f"{MODEL_FORMAT}: export its checkpoint again with this version (simnet export)"
        )
    return card


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(folder: Path, card: dict, names: list[str]) -> None:
    """Check the files `names` against the card's sha256 (once per process per file version)."""
    for name in names:
        path = Path(folder) / name
        expected = card["sha256"].get(name)
        if expected is None:
            raise InputError(f"the model card of {folder} lists no checksum for {name}")
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise InputError(f"the model file {path} is missing; reinstall the model") from None
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if _verified.get(key):
            continue
        if sha256(path) != expected:
            raise InputError(
                f"the model file {path} is damaged (its checksum does not match the model card); reinstall the model"
            )
        _verified[key] = True


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


def thread_count() -> int:
    """Threads for one session: the cores this process may use (SIMNET_THREADS overrides)."""
    if os.environ.get("SIMNET_THREADS", "").isdigit():
        return max(1, int(os.environ["SIMNET_THREADS"]))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


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
    names = [card["graphs"][g][precision] for g in ("keypoints", "transport")]
    verify(folder, card, names)
    options = session_options(ort)
    sessions = []
    for name in names:
        try:
            sessions.append(ort.InferenceSession(str(folder / name), options, providers=providers))
        except Exception as error:  # ONNX Runtime raises its own types for unreadable graphs
            raise InputError(f"ONNX Runtime cannot load {folder / name}: {str(error).splitlines()[0]}") from None
    actual = sessions[0].get_providers()[0]
    return Graphs(sessions[0], sessions[1], actual, precision, "")


class OnnxBackend:
    """SIM-Net's two graphs behind plain numpy calls (the engine's learned model uses this).
    On a GPU the transport graph runs through IO binding: its eight inputs are copied to the
    device in one go and its outputs fetched once."""

    def __init__(self, folder: Path, device: str = "auto"):
        self.folder = Path(folder)
        self.card = read_card(self.folder)
        self.graphs = load_graphs(self.folder, device)
        self.work_size = int(self.card["config"]["work_size"])
        self.keypoint_count = int(self.card["config"]["keypoints"])

    def keypoints(self, masks: np.ndarray, priors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """masks (B, 1, S, S) float32, each pulled by its prior (B, 2, 3) -> keypoints (B, K, 2),
        jacobians (B, K, 2, 2)."""
        return tuple(self.graphs.keypoints.run(None, {"masks": masks, "priors": priors}))

    def transport(self, exemplar, source_masks, target_masks, priors, kp_aligned, jac_aligned, kp_tgt, jac_tgt):
        """-> weights (B, M, S, S), mask (B, 1, S, S), colour matrices (B, 3, 4), seam
        offsets (B, 1, S, S)."""
        feeds = {
            "exemplar": exemplar, "source_mask": source_masks, "target_mask": target_masks, "prior": priors,
            "keypoints_aligned": kp_aligned, "jacobians_aligned": jac_aligned, "keypoints_tgt": kp_tgt, "jacobians_tgt": jac_tgt,
        }
        if not self.graphs.on_gpu:
            return tuple(self.graphs.transport.run(None, feeds))
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
