"""`simnet train`: train SIM-Net from a folder of artworks, or fine-tune a shipped checkpoint.

One process on CPU or CUDA; under `torchrun` the same command runs DistributedDataParallel
(gloo on CPU, NCCL on CUDA), each rank drawing its own pairs. Rank 0 writes everything into the
output folder:
    checkpoint.pt      config, step, weights, optimiser and random states (resumable)
    losses.csv         every step's losses
    samples/step_N.png exemplar | target mask | prediction | ground truth, every --sample-every
    losses.png         the loss curves, at the end
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.distributed as dist

from ..errors import InputError
from ..io.files import write_atomically
from .config import SimNetConfig, preset
from .data import PAIR_KINDS, PairSampler, load_artworks
from .model import SimNet
from .objective import Objective

CHECKPOINT = "checkpoint.pt"
SAMPLE_ROWS = 4


@dataclass
class TrainOptions:
    data: Path
    out: Path
    preset: str = "small"
    steps: int = 200
    batch_size: int | None = None
    learning_rate: float | None = None
    seed: int = 0
    resume: bool = False
    init: Path | None = None
    exclude: tuple[str, ...] = ()
    sample_every: int = 50
    checkpoint_every: int = 50
    device: str = "auto"
    perceptual: bool = True
    quiet: bool = False
    config: SimNetConfig | None = None  # instead of a preset (tests use tiny sizes)


def load_checkpoint(path: Path) -> dict:
    """A checkpoint written by `train`; a clear error for anything else."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise InputError(f"no checkpoint at {path}") from None
    except Exception as error:  # torch raises many kinds for a damaged file
        raise InputError(f"{path} is not a readable checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise InputError(f"{path} is not a SIM-Net checkpoint")
    return state


def model_from_checkpoint(path: Path) -> SimNet:
    state = load_checkpoint(path)
    model = SimNet(SimNetConfig.from_dict(state["config"]))
    model.load_state_dict(state["model"])
    return model.eval()


def train(options: TrainOptions) -> dict:
    """Run the training; returns a summary (steps, seconds per step, last losses)."""
    rank, world = _init_distributed()
    device = _device(options.device, rank)
    log = (lambda *a: None) if (options.quiet or rank != 0) else (lambda msg: print(msg, file=sys.stderr))
    options.out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = options.out / CHECKPOINT

    resumed = load_checkpoint(checkpoint_path) if options.resume else None
    initial = load_checkpoint(options.init) if options.init else None
    if resumed is not None:
        config = SimNetConfig.from_dict(resumed["config"])
    elif initial is not None:
        config = SimNetConfig.from_dict(initial["config"])
    else:
        config = options.config or preset(options.preset)
    overrides: dict[str, int | float] = {}
    if options.batch_size:
        overrides["batch_size"] = options.batch_size
    if options.learning_rate:
        overrides["learning_rate"] = options.learning_rate
    if overrides and resumed is None:
        config = SimNetConfig.from_dict({**config.to_dict(), **overrides})

    torch.manual_seed(options.seed + rank)
    artworks = load_artworks(options.data, set(options.exclude), log)
    rng = np.random.default_rng(options.seed + 1000 * rank)
    sampler = PairSampler(artworks, config.work_size, rng)

    model = SimNet(config)
    if initial is not None:
        model.load_state_dict(initial["model"])
    features = None
    if options.perceptual and (config.losses.perceptual or config.losses.gram):
        from .perceptual import PerceptualNet

        features = PerceptualNet()
    objective = Objective(model, features).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate, betas=(0.5, 0.999))
    step = 0
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optimiser.load_state_dict(resumed["optimiser"])
        step = int(resumed["step"])
        if rank < len(resumed.get("rng", [])):
            rng.bit_generator.state = resumed["rng"][rank]["numpy"]
            torch.set_rng_state(resumed["rng"][rank]["torch"])
        log(f"resumed from {checkpoint_path} at step {step}")
    wrapped: torch.nn.Module = objective
    if world > 1:
        wrapped = torch.nn.parallel.DistributedDataParallel(objective, device_ids=[device.index] if device.type == "cuda" else None)

    autocast_dtype = _autocast_dtype(device)
    scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype == torch.float16)
    names = _loss_names(features is not None)
    csv_path = options.out / "losses.csv"
    if rank == 0 and (not options.resume or not csv_path.exists()):
        csv_path.write_text(",".join(["step", "total"] + names) + "\n")
    elif rank == 0:
        _keep_rows_up_to(csv_path, step)
    if rank == 0:
        (options.out / "data.json").write_text(json.dumps(_data_summary(artworks, options), indent=1))
    log(f"training the '{config.preset}' preset on {len(artworks)} artworks, {device}, "
        f"batch {config.batch_size} x {world} process(es), steps {step} -> {options.steps}")

    bar = ProgressBar(options.steps, step, enabled=rank == 0 and not options.quiet)
    started, first_step = time.perf_counter(), step
    last = {}
    objective.train()
    while step < options.steps:
        batch = sampler.batch(config.batch_size)
        tensors = [torch.from_numpy(a).to(device) for a in (batch.exemplar, batch.source_mask, batch.target_mask, batch.truth, batch.truth_weight)]
        prior, field = (torch.from_numpy(a).to(device) for a in (batch.prior, batch.field))
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            out, terms, total = wrapped(*tensors, prior, field)
        if not torch.isfinite(total):
            raise RuntimeError(f"the loss became {total.item()} at step {step + 1}; lower --learning-rate")
        optimiser.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(optimiser)
        scaler.update()
        step += 1
        last = {"total": float(total.detach()), **{k: float(v.detach()) for k, v in terms.items()}}
        if rank == 0:
            with csv_path.open("a") as f:
                f.write(",".join([str(step)] + [f"{last[k]:.6g}" for k in ["total"] + names]) + "\n")
            bar.update(step, last)
            if step % options.sample_every == 0 or step == options.steps:
                write_sample_grid(options.out / "samples" / f"step_{step:06d}.png", tensors, out["image"].detach())
        if step % options.checkpoint_every == 0 or step == options.steps:
            rng_states = _gather_rng_states(rng, world)  # every rank takes part
            if rank == 0:
                _save(checkpoint_path, config, step, model, optimiser, rng_states, artworks, options)
    bar.close()
    seconds = (time.perf_counter() - started) / max(1, step - first_step)
    if rank == 0:
        plot_losses(csv_path, options.out / "losses.png")
        log(f"done: {step} steps, {seconds:.2f} s/step; checkpoint {checkpoint_path}")
    if world > 1:
        dist.destroy_process_group()
    return {"steps": step, "seconds_per_step": seconds, "losses": last}


def _init_distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _device(name: str, rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda was asked for but torch sees no CUDA GPU")
        index = int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count()
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")


def _autocast_dtype(device: torch.device):
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _keep_rows_up_to(csv_path: Path, step: int) -> None:
    """Drop the loss rows after `step`: a run stopped between checkpoints logged steps that the
    resumed run does again."""
    header, *rows = csv_path.read_text().splitlines()
    kept = [row for row in rows if row and int(row.split(",", 1)[0]) <= step]
    csv_path.write_text("\n".join([header, *kept]) + "\n")


def _loss_names(with_features: bool) -> list[str]:
    names = ["mask_iou", "boundary_iou", "pixel_l1", "ssim", "sharpness", "field", "equivariance_value", "equivariance_jacobian", "cycle"]
    return names + (["perceptual", "gram"] if with_features else [])


def _data_summary(artworks, options: TrainOptions) -> dict:
    return {
        "folder": str(options.data),
        "artworks": [a.name for a in artworks],
        "excluded": list(options.exclude),
        "maps": {a.name: a.map_source for a in artworks},
        "pair_kinds": list(PAIR_KINDS),
    }


def _gather_rng_states(rng, world: int) -> list[dict]:
    """Every rank's random state, so that a resumed run continues each rank's stream."""
    own = {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state()}
    if world == 1:
        return [own]
    gathered: list = [None] * world
    dist.all_gather_object(gathered, own)
    return gathered


def _save(path: Path, config, step, model, optimiser, rng_states, artworks, options) -> None:
    state = {
        "config": config.to_dict(),
        "step": step,
        "model": model.state_dict(),
        "optimiser": optimiser.state_dict(),
        "rng": rng_states,
        "data": _data_summary(artworks, options),
    }
    write_atomically(path, lambda out: torch.save(state, out))


def write_sample_grid(path: Path, tensors, prediction: torch.Tensor) -> None:
    """Rows of exemplar | target mask over the exemplar | prediction in the target mask |
    ground truth (grey where there is none)."""
    exemplar, _, target, truth, weight = (t[:SAMPLE_ROWS].float().cpu().numpy() for t in tensors)
    predicted = prediction[:SAMPLE_ROWS].float().cpu().numpy()
    rows = []
    for i in range(exemplar.shape[0]):
        ex = exemplar[i].transpose(1, 2, 0)
        tgt = target[i, 0][..., None]
        shown_target = ex * (0.35 + 0.65 * tgt) + np.array([0.0, 0.25, 0.0]) * tgt
        pred = predicted[i].transpose(1, 2, 0) * tgt + 0.5 * (1 - tgt)
        has_truth = weight[i, 0][..., None] > 0
        tru = np.where(has_truth, truth[i].transpose(1, 2, 0), 0.5)
        rows.append(np.concatenate([ex, shown_target, pred, tru], axis=1))
    grid = np.clip(np.concatenate(rows, axis=0), 0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), (grid[..., ::-1] * 255 + 0.5).astype(np.uint8))


def plot_losses(csv_path: Path, png_path: Path) -> None:
    """One panel per loss, raw and smoothed, log scale where the values allow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    names = [k for k in rows[0] if k != "step"]
    steps = np.array([int(r["step"]) for r in rows])
    columns = 4
    lines = (len(names) + columns - 1) // columns
    figure, axes = plt.subplots(lines, columns, figsize=(4 * columns, 2.8 * lines), squeeze=False)
    for axis, name in zip(axes.ravel(), names):
        values = np.array([float(r[name]) for r in rows])
        window = max(1, len(values) // 20)
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        axis.plot(steps, values, color="0.75", linewidth=0.8)
        axis.plot(steps[window - 1 :], smooth, color="C0")
        axis.set_title(name)
        axis.set_xlabel("step")
        if (values > 0).all():
            axis.set_yscale("log")
    for axis in axes.ravel()[len(names) :]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(png_path, dpi=90)
    plt.close(figure)


class ProgressBar:
    """The training's bar on stderr (engine/progress.py): step, s/step, ETA and the running
    (smoothed) losses."""

    SHOWN = ("total", "mask_iou", "pixel_l1", "equivariance_value")

    def __init__(self, total: int, start: int, enabled: bool):
        from ..progress import progress_bar

        self.running: dict[str, float] = {}
        self.bar = progress_bar(total, "training", "step", not enabled, initial=start)

    def update(self, step: int, losses: dict[str, float]) -> None:
        for k, v in losses.items():
            self.running[k] = v if k not in self.running else 0.9 * self.running[k] + 0.1 * v
        self.bar.set_postfix_str(" ".join(f"{k} {self.running[k]:.4f}" for k in self.SHOWN if k in self.running), refresh=False)
        self.bar.update(step - self.bar.n)

    def close(self) -> None:
        self.bar.close()
