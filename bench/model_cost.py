"""Size and cost of the SIM-Net presets: parameters, GFLOPs per region, PyTorch inference time
per region on this machine, and (with --train-steps) seconds per training step.

    python bench/model_cost.py [--presets small paper] [--train-steps 3 --data DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from engine.simnet.config import preset  # noqa: E402
from engine.simnet.model import KeypointGraph, SimNet, TransportGraph, count_parameters  # noqa: E402
from export.onnx_export import example_inputs  # noqa: E402


def gflops(module, inputs) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(*inputs)
    return counter.get_total_flops() / 1e9


def seconds(module, inputs, repeats: int = 3) -> float:
    with torch.no_grad():
        module(*inputs)
        start = time.perf_counter()
        for _ in range(repeats):
            module(*inputs)
    return (time.perf_counter() - start) / repeats


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "paper"])
    parser.add_argument("--train-steps", type=int, default=0, help="also time this many training steps per preset")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "art")
    args = parser.parse_args(argv)
    lines = [
        f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        "",
        "| preset | K | work size | G_KP params | G_A + guidance params | G_C params (training) | GFLOPs per region (2 x G_KP + G_A) | PyTorch s per region | train s/step (batch) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in args.presets:
        config = preset(name)
        model = SimNet(config).eval()
        inputs = example_inputs(model, config, batch=1)
        keypoint_graph, transport_graph = KeypointGraph(model).eval(), TransportGraph(model).eval()
        flops = gflops(keypoint_graph, inputs["keypoints"]) + gflops(transport_graph, inputs["transport"])
        time_per_region = seconds(keypoint_graph, inputs["keypoints"]) + seconds(transport_graph, inputs["transport"])
        step = "not measured"
        if args.train_steps:
            from engine.simnet.train import TrainOptions, train

            with tempfile.TemporaryDirectory() as folder:
                summary = train(TrainOptions(data=args.data, out=Path(folder), preset=name, steps=args.train_steps + 1,
                                             quiet=True, sample_every=10**6, checkpoint_every=10**6))
            step = f"{summary['seconds_per_step']:.2f} ({config.batch_size})"
        lines.append(
            f"| {name} | {config.keypoints} | {config.work_size} | {count_parameters(model.keypoint_detector) / 1e6:.2f} M | "
            f"{(count_parameters(model.transport) + count_parameters(model.texture_guidance)) / 1e6:.2f} M | "
            f"{count_parameters(model.dense_motion) / 1e6:.2f} M | {flops:.2f} | {time_per_region:.3f} | {step} |"
        )
        print(lines[-1], file=sys.stderr)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
