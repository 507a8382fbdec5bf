"""`simnet export CHECKPOINT -o DIR`: the inference graphs, their fp16 copies and the model card.

Graphs (opset 17, dynamic batch, all inputs and outputs float32):
    keypoints.onnx   masks (B, 1, S, S), priors (B, 2, 3) (each mask is pulled by its prior
                     first) -> keypoints (B, K, 2), jacobians (B, K, 2, 2)
    transport.onnx   exemplar (B, 3, S, S), source_mask, target_mask (B, 1, S, S), prior
                     (B, 2, 3), keypoints and jacobians of the aligned and target masks ->
                     weights (B, K + 2, S, S), mask (B, 1, S, S), colour_matrix (B, 3, 4),
                     luma_offset (B, 1, S, S)
    *.fp16.onnx      the same with fp16 weights and arithmetic inside (for GPUs), fp32 at the edges
    card.json        what the engine needs to run them and what a person needs to trust them

Parity is part of export: ONNX Runtime (CPU) against PyTorch on random and on real region pairs;
any fp32 output off by more than FP32_TOLERANCE fails the export (nothing is written then). The
fp16 error is measured and reported, not enforced.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from engine.errors import InputError
from engine.io.files import current_umask
from engine.runtime.sessions import (
    CARD,
    KEYPOINT_INPUTS,
    KEYPOINT_OUTPUTS,
    MODEL_FORMAT,
    TRANSPORT_INPUTS,
    TRANSPORT_OUTPUTS,
    sha256,
)
from engine.simnet.config import SimNetConfig
from engine.simnet.data import prior_affine
from engine.simnet.model import KeypointGraph, SimNet, TransportGraph, count_parameters
from engine.simnet.train import load_checkpoint

OPSET = 17
FP32_TOLERANCE = 1e-4


def export_checkpoint(checkpoint: Path, out: Path, name: str | None = None, training: dict | None = None, log=print) -> dict:
    """Export `checkpoint` into the folder `out` (replaced as a whole only once parity passed).
    Returns the model card."""
    state = load_checkpoint(checkpoint)
    config = SimNetConfig.from_dict(state["config"])
    model = SimNet(config)
    model.load_state_dict(state["model"])
    model.eval()
    out.parent.mkdir(parents=True, exist_ok=True)  # staging beside it, so the final rename stays on one filesystem
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent))
    try:
        # eval() on the wrappers too: the exporter restores each module's mode when it is done,
        # and a wrapper left in training mode would put the model's batch norms back in it.
        graphs = {"keypoints": KeypointGraph(model).eval(), "transport": TransportGraph(model).eval()}
        examples = example_inputs(model, config)
        for graph, module in graphs.items():
            _export_graph(module, examples[graph], staging / f"{graph}.onnx", graph)
            to_fp16(staging / f"{graph}.onnx", staging / f"{graph}.fp16.onnx")
        parity = check_parity(model, config, graphs, staging)
        for graph, figures in parity.items():
            log(f"parity {graph}: fp32 max abs error {figures['fp32_max_abs_error']:.2e}, fp16 {figures['fp16_max_abs_error']}")
        worst = max(f["fp32_max_abs_error"] for f in parity.values())
        if worst > FP32_TOLERANCE:
            raise InputError(f"export failed the parity check: ONNX Runtime differs from PyTorch by {worst:.2e} (limit {FP32_TOLERANCE:g})")
        card = model_card(model, config, state, checkpoint, staging, parity, name, training)
        (staging / CARD).write_text(json.dumps(card, indent=1) + "\n")
        for path in staging.iterdir():
            path.chmod(0o644 & ~current_umask())
        staging.chmod(0o755 & ~current_umask())  # mkdtemp made it private
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
        return card
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def example_inputs(model: SimNet, config: SimNetConfig, batch: int = 2, seed: int = 0) -> dict:
    """Inputs that exercise both graphs: random blob masks and a random exemplar."""
    s = config.work_size
    generator = torch.Generator().manual_seed(seed)
    masks = random_blobs(2 * batch, s, generator)
    exemplar = torch.rand(batch, 3, s, s, generator=generator)
    return graph_inputs(model, exemplar, masks[:batch], masks[batch:])


def graph_inputs(model: SimNet, exemplar, source, target) -> dict:
    """Both graphs' inputs for region pairs (masks (B, 1, S, S)), with the baseline's priors
    as the engine computes them."""
    priors = torch.from_numpy(np.stack([prior_affine(a[0].numpy() > 0.5, b[0].numpy() > 0.5) for a, b in zip(source, target)]))
    identities = torch.eye(2, 3).expand_as(priors)
    masks, all_priors = torch.cat([source, target]), torch.cat([priors, identities])
    with torch.no_grad():
        keypoints, jacobians = KeypointGraph(model)(masks, all_priors)
    n = source.shape[0]
    return {
        "keypoints": (masks, all_priors),
        "transport": (exemplar, source, target, priors, keypoints[:n], jacobians[:n], keypoints[n:], jacobians[n:]),
    }


def random_blobs(count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """(count, 1, size, size) binary masks: unions of random ellipses."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    masks = torch.zeros(count, 1, size, size)
    for i in range(count):
        for _ in range(3):
            c = torch.rand(2, generator=generator) * 1.2 - 0.6
            r = torch.rand(2, generator=generator) * 0.35 + 0.1
            masks[i, 0] += (((xs - c[0]) / r[0]) ** 2 + ((ys - c[1]) / r[1]) ** 2 <= 1).float()
    return (masks > 0).float()


def _export_graph(module, inputs, path: Path, graph: str) -> None:
    names_in = KEYPOINT_INPUTS if graph == "keypoints" else TRANSPORT_INPUTS
    names_out = KEYPOINT_OUTPUTS if graph == "keypoints" else TRANSPORT_OUTPUTS
    dynamic = {name: {0: "batch"} for name in names_in + names_out}
    with warnings.catch_warnings():  # the tracer's notes on Python ints in shapes: intended
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, inputs, str(path), input_names=list(names_in), output_names=list(names_out),
            dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
        )


def to_fp16(source: Path, destination: Path) -> None:
    """fp16 weights and arithmetic, fp32 inputs and outputs (onnxconverter-common's converter,
    the tool made for this)."""
    import onnx
    from onnxconverter_common import float16

    model = separate_outputs(onnx.load(str(source)))
    with warnings.catch_warnings():  # constants such as 1e-12 become fp16's smallest: intended
        warnings.simplefilter("ignore")
        converted = float16.convert_float_to_float16(model, keep_io_types=True)
    onnx.save(converted, str(destination))


def separate_outputs(model):
    """Give every graph output that is also read inside the graph its own Identity node.

    The fp16 converter casts such an output back to fp32 in place, and the inner readers would
    then get fp32 next to fp16 operands; after this they read the inner fp16 tensor."""
    import onnx

    outputs = {o.name for o in model.graph.output}
    read_inside = {name for node in model.graph.node for name in node.input if name in outputs}
    for name in read_inside:
        inner = f"{name}__inner"
        for node in model.graph.node:
            node.output[:] = [inner if o == name else o for o in node.output]
            node.input[:] = [inner if i == name else i for i in node.input]
        model.graph.node.append(onnx.helper.make_node("Identity", [inner], [name], name=f"{name}__output"))
    return model


def check_parity(model: SimNet, config: SimNetConfig, graphs: dict, folder: Path) -> dict:
    """Max abs error of every graph's outputs, ONNX Runtime vs PyTorch, on random and real
    inputs; fp16 measured where ONNX Runtime can run it here (else the reason)."""
    import onnxruntime as ort

    real = real_inputs(model, config)
    cases = [example_inputs(model, config, seed=1), real]
    figures = {}
    for graph, module in graphs.items():
        names_in = KEYPOINT_INPUTS if graph == "keypoints" else TRANSPORT_INPUTS
        errors = {"fp32": 0.0, "fp16": 0.0}
        fp16_note = None
        for precision in ("fp32", "fp16"):
            path = folder / (f"{graph}.onnx" if precision == "fp32" else f"{graph}.fp16.onnx")
            try:
                options = ort.SessionOptions()
                options.log_severity_level = 3  # errors only
                session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            except Exception as error:  # fp16 kernels are missing on some CPU builds
                if precision == "fp32":
                    raise
                fp16_note = f"not measured: ONNX Runtime CPU cannot run it here ({str(error).splitlines()[0][:120]})"
                continue
            for case in cases:
                inputs = case[graph]
                with torch.no_grad():
                    expected = module(*inputs)
                got = session.run(None, {n: t.numpy() for n, t in zip(names_in, inputs)})
                for e, g in zip(expected, got):
                    errors[precision] = max(errors[precision], float(np.abs(e.numpy() - g).max()))
        figures[graph] = {
            "fp32_max_abs_error": errors["fp32"],
            "fp16_max_abs_error": fp16_note or errors["fp16"],
            "cases": ["random blobs, batch 2", "bundled Etretat sample, every region pair"],
        }
    return figures


def real_inputs(model: SimNet, config: SimNetConfig) -> dict:
    """Every region pair of the bundled sample (exemplar, its map and the edited map) at the
    working size, as one batch."""
    import cv2

    from engine import regions
    from engine.samples import load_sample

    sample = load_sample()
    picture, source, target = sample.picture, sample.edit.exemplar_labels, sample.edit.target_labels
    s = config.work_size
    ids = regions.paired_ids(source, target)
    exemplar = cv2.resize(picture.pixels[:, :, :3], (s, s), interpolation=cv2.INTER_AREA)
    def masks(labels):
        return np.stack([cv2.resize((labels == i).astype(np.float32), (s, s), interpolation=cv2.INTER_AREA) for i in ids])[:, None]
    src, tgt = torch.from_numpy(masks(source)), torch.from_numpy(masks(target))
    ex = torch.from_numpy(np.ascontiguousarray(exemplar.transpose(2, 0, 1)))[None].expand(len(ids), 3, s, s).contiguous()
    return graph_inputs(model, ex, src, tgt)


def model_card(model, config, state, checkpoint, folder: Path, parity, name, training) -> dict:
    s, k = config.work_size, config.keypoints
    files = sorted(p.name for p in folder.glob("*.onnx"))
    return {
        "name": name or f"simnet-{config.preset}",
        "format": MODEL_FORMAT,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "preset": config.preset,
        "config": config.to_dict(),
        "checkpoint": {"file": checkpoint.name, "step": int(state.get("step", 0))},
        "parameters": {
            "keypoint_detector": count_parameters(model.keypoint_detector),
            "transport": count_parameters(model.transport),
            "texture_guidance": count_parameters(model.texture_guidance),
        },
        "training_data": state.get("data"),
        "training": training or {},
        "opset": OPSET,
        "graphs": {
            "keypoints": {
                "fp32": "keypoints.onnx", "fp16": "keypoints.fp16.onnx",
                "inputs": {"masks": ["batch", 1, s, s], "priors": ["batch", 2, 3]},
                "outputs": {"keypoints": ["batch", k, 2], "jacobians": ["batch", k, 2, 2]},
            },
            "transport": {
                "fp32": "transport.onnx", "fp16": "transport.fp16.onnx",
                "inputs": {
                    "exemplar": ["batch", 3, s, s], "source_mask": ["batch", 1, s, s], "target_mask": ["batch", 1, s, s],
                    "prior": ["batch", 2, 3], "keypoints_aligned": ["batch", k, 2], "jacobians_aligned": ["batch", k, 2, 2],
                    "keypoints_tgt": ["batch", k, 2], "jacobians_tgt": ["batch", k, 2, 2],
                },
                "outputs": {
                    "weights": ["batch", config.motions, s, s], "mask": ["batch", 1, s, s],
                    "colour_matrix": ["batch", 3, 4], "luma_offset": ["batch", 1, s, s],
                },
            },
        },
        "value_ranges": {
            "exemplar": "RGB in [0, 1], straight alpha dropped, resized (area) to the working size",
            "masks": "region coverage in [0, 1], resized (area) to the working size",
            "keypoints": "normalised [-1, 1], x first, pixel centres at (2 i + 1) / S - 1",
            "priors": "normalised pulling affines, target -> exemplar: the moments baseline's alignment (engine.models.alignment.align), the identity for target masks",
            "weights": "[0, 1], summing to 1 over the K + 2 motions: the identity, the prior, the prior refined at each keypoint",
            "luma_offset": f"[-{config.texture_max_shift}, {config.texture_max_shift}], zero off the seam band",
        },
        "parity": parity,
        "sha256": {f: sha256(folder / f) for f in files},
    }
