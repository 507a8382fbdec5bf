"""`simnet doctor`: what this installation can run, checked rather than assumed."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np

from ..errors import InputError


def report(device: str = "auto") -> tuple[list[str], bool]:
    """Lines to print and whether everything needed for the default model works."""
    from ..models import default_model, shipped_models
    from ..runtime import sessions

    default, note = default_model()

    lines = [f"python {platform.python_version()} on {platform.system()} {platform.machine()}"]
    ok = True
    try:
        ort = sessions.onnxruntime()
    except InputError as error:
        lines.append(f"onnxruntime: MISSING ({error})")
        return lines + [_verdict(False, "install ONNX Runtime")], False
    lines.append(f"onnxruntime {ort.__version__} ({_package_name()})")
    available = ort.get_available_providers()
    lines.append(f"providers this build has: {', '.join(available)}")
    lines.append(f"threads per session: {sessions.thread_count()} (SIMNET_THREADS overrides)")
    gpu = _gpu_description()
    lines.append(f"GPU: {gpu or 'none found'}")
    models = shipped_models()
    if not models:
        lines.append("learned models: none shipped; the baseline `moments` is the default")
    verdict_note = ""
    for name, folder in models.items():
        try:
            card = sessions.read_card(folder)
            graphs = sessions.load_graphs(folder, device)
            files = [card["graphs"][g][graphs.precision] for g in ("keypoints", "transport")]
            seconds = _smoke_test(folder, device)
            lines.append(
                f"model {name}: {', '.join(files)} checksums OK; runs on {graphs.provider} ({graphs.precision}); "
                f"one region at {card['config']['work_size']} px in {seconds * 1000:.0f} ms"
            )
            if graphs.note:
                lines.append(f"  note: {graphs.note}")
                verdict_note = graphs.note
            if name == default:
                lines.append(_blend_line(graphs))
        except InputError as error:
            lines.append(f"model {name}: FAILED: {error}")
            ok = False
    lines.append(f"default model: {default}" + (f" ({note})" if note else ""))
    return lines + [_verdict(ok, verdict_note)], ok


def _blend_line(graphs) -> str:
    """How the full-resolution blend runs beside the default model, and the timing behind it."""
    from ..runtime.blend_graph import beside, faster_beside, measure

    timing = measure(beside(graphs))
    used = "OpenCV" if faster_beside(graphs) is None else "the ONNX graph"
    return (
        f"full-resolution blend: OpenCV {timing.opencv * 1000:.0f} ms, ONNX graph on {timing.provider} "
        f"{timing.graph * 1000:.0f} ms per probe region: {used} runs it (SIMNET_BLEND overrides)"
    )


def _verdict(ok: bool, note: str) -> str:
    if not ok:
        return f"verdict: NOT READY{(': ' + note) if note else ''} (see the lines above)"
    return "verdict: ready" + (f", with a note: {note}" if note else "")


def _package_name() -> str:
    from importlib import metadata

    for name in ("onnxruntime-gpu", "onnxruntime", "onnxruntime-directml"):
        try:
            return f"package {name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return "package unknown"


def _gpu_description() -> str | None:
    """The NVIDIA GPU's name and memory, from nvidia-smi when it is installed."""
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return None
    return out.replace("\n", "; ") or None


def _smoke_test(folder: Path, device: str) -> float:
    """Run both graphs once on a synthetic region pair; returns the seconds it took."""
    from ..models.learned import LearnedModel

    model = LearnedModel(folder.name, folder, device)
    exemplar = np.random.default_rng(0).random((256, 256, 3), dtype=np.float32)
    source = np.zeros((256, 256), bool)
    source[64:160, 64:160] = True
    target = np.roll(source, 32, axis=1)
    model.region_motion(exemplar, source, target)  # warm-up: sessions and kernels
    start = time.perf_counter()
    model.region_motion(exemplar, source, target)
    return time.perf_counter() - start


if __name__ == "__main__":  # pragma: no cover
    print("\n".join(report()[0]))
    os._exit(0)
