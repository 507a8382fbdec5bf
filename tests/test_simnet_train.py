"""`simnet train` end to end on tiny folders and a tiny configuration."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.app.cli import main
from engine.errors import InputError
from engine.simnet.data import PairSampler, load_artworks
from engine.simnet.train import (
    TrainOptions,
    load_checkpoint,
    model_from_checkpoint,
    train,
)

from .simnet_helpers import tiny_config, write_training_folder

ROOT = Path(__file__).resolve().parent.parent


def _options(data, out, **changes):
    values = dict(data=data, out=out, steps=4, config=tiny_config(), perceptual=False, quiet=True, sample_every=2, checkpoint_every=2)
    values.update(changes)
    return TrainOptions(**values)


def _losses(out: Path) -> list[dict]:
    with (out / "losses.csv").open() as f:
        return list(csv.DictReader(f))


def test_training_writes_checkpoint_samples_losses_and_plot(tmp_path):
    data = write_training_folder(tmp_path / "data")
    summary = train(_options(data, tmp_path / "run"))
    assert summary["steps"] == 4 and summary["seconds_per_step"] > 0
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["step"] == 4 and state["config"]["preset"] == "tiny"
    assert state["data"]["artworks"] == ["art0", "art1"] and state["data"]["maps"]["art0"] == "file"
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]
    grid = cv2.imread(str(tmp_path / "run" / "samples" / "step_000004.png"))
    assert grid.shape == (4 * 32, 4 * 32, 3)  # four rows of exemplar | target | prediction | truth
    assert len(_losses(tmp_path / "run")) == 4
    assert (tmp_path / "run" / "losses.png").stat().st_size > 1000


@pytest.fixture(scope="module")
def tiny_run_losses(tmp_path_factory) -> list[dict]:
    """The losses of a 40-step tiny run on two artworks (one run, read by several tests)."""
    folder = tmp_path_factory.mktemp("tiny_run")
    data = write_training_folder(folder / "data", count=2)
    train(_options(data, folder / "run", steps=40, sample_every=100, checkpoint_every=100))
    return _losses(folder / "run")


def test_a_tiny_overfit_run_cuts_the_loss(tiny_run_losses):
    rows = tiny_run_losses
    first = np.mean([float(r["total"]) for r in rows[:5]])
    last = np.mean([float(r["total"]) for r in rows[-5:]])
    assert last < 0.7 * first, (first, last)  # stated factor: at least 30% lower after 40 steps


def test_a_pairs_field_is_the_warp_that_made_its_truth(tmp_path):
    """The supervised field is in grid_sample's convention: sampling the exemplar with it gives
    the pair's truth wherever the truth holds."""
    data = write_training_folder(tmp_path / "data")
    batch = PairSampler(load_artworks(data, log=lambda m: None), 32, np.random.default_rng(5)).batch(16)
    exact = np.isin(batch.kinds, [0, 1, 3])
    assert exact.any() and (batch.truth_weight[~exact] == 0).all()
    grid = torch.from_numpy(batch.field).permute(0, 2, 3, 1)
    sampled = torch.nn.functional.grid_sample(torch.from_numpy(batch.exemplar), grid, align_corners=False,
                                              padding_mode="reflection").numpy()
    # where the truth holds, and off the outermost half pixel (where OpenCV and torch reflect differently)
    interior = (np.abs(batch.field) <= 1.0 - 1.0 / 32).all(axis=1, keepdims=True)
    holds = np.broadcast_to((batch.truth_weight > 0) & interior, sampled.shape) & exact[:, None, None, None]
    assert np.abs(sampled - batch.truth)[holds].max() < 1e-3


def test_a_tiny_run_cuts_the_supervised_field_error(tiny_run_losses):
    rows = tiny_run_losses
    first = np.mean([float(r["field"]) for r in rows[:8]])
    last = np.mean([float(r["field"]) for r in rows[-8:]])
    assert last < 0.8 * first, (first, last)  # stated factor: at least 20% lower after 40 steps


def test_resume_gives_the_same_next_step(tmp_path):
    data = write_training_folder(tmp_path / "data")
    torch.set_num_threads(1)  # bit-for-bit comparable runs
    train(_options(data, tmp_path / "straight", steps=5, checkpoint_every=5))
    train(_options(data, tmp_path / "split", steps=4, checkpoint_every=4))
    train(_options(data, tmp_path / "split", steps=5, checkpoint_every=5, resume=True))
    straight, split = _losses(tmp_path / "straight"), _losses(tmp_path / "split")
    assert [r["step"] for r in split] == ["1", "2", "3", "4", "5"]
    assert float(split[4]["total"]) == pytest.approx(float(straight[4]["total"]), rel=1e-5)


def test_a_run_stopped_between_checkpoints_resumes_without_doubled_steps(tmp_path):
    data = write_training_folder(tmp_path / "data")
    train(_options(data, tmp_path / "run", steps=4, checkpoint_every=4))
    losses = tmp_path / "run" / "losses.csv"
    last = losses.read_text().splitlines()[-1]
    losses.write_text(losses.read_text() + "5" + last[1:] + "\n")  # logged, then stopped before its checkpoint
    train(_options(data, tmp_path / "run", steps=6, checkpoint_every=6, resume=True))
    assert [r["step"] for r in _losses(tmp_path / "run")] == ["1", "2", "3", "4", "5", "6"]


def test_fine_tuning_starts_from_the_given_weights(tmp_path):
    data = write_training_folder(tmp_path / "data")
    train(_options(data, tmp_path / "base", steps=2))
    base = model_from_checkpoint(tmp_path / "base" / "checkpoint.pt")
    train(_options(data, tmp_path / "tuned", steps=1, init=tmp_path / "base" / "checkpoint.pt", config=None))
    state = load_checkpoint(tmp_path / "tuned" / "checkpoint.pt")
    assert state["config"]["preset"] == "tiny" and state["step"] == 1
    tuned = model_from_checkpoint(tmp_path / "tuned" / "checkpoint.pt")
    moved = [(a - b).abs().max().item() for a, b in zip(base.parameters(), tuned.parameters())]
    assert 0 < max(moved) < 0.05  # one small step away from the base, not a fresh start


def test_identity_edit_reproduces_the_exemplar_after_training(tmp_path):
    data = write_training_folder(tmp_path / "data")
    train(_options(data, tmp_path / "run", steps=10))
    model = model_from_checkpoint(tmp_path / "run" / "checkpoint.pt")
    batch = PairSampler(load_artworks(data, log=lambda m: None), 32, np.random.default_rng(3)).batch(2)
    exemplar, mask = torch.from_numpy(batch.exemplar), torch.from_numpy(batch.source_mask)
    with torch.no_grad():
        out = model(exemplar, mask, mask, torch.eye(2, 3).expand(2, 2, 3))
    inside = mask > 0.5
    error = (out["image"] - exemplar).abs().expand(-1, 3, -1, -1)[inside.expand(-1, 3, -1, -1)]
    assert error.max().item() < 1e-4


def test_detector_learns_equivariance_on_masks():
    """Trained on the equivariance loss alone, keypoints follow a known affine better than at
    initialisation."""
    from engine.simnet.losses import equivariance_losses
    from engine.simnet.model import SimNet
    from export.onnx_export import random_blobs

    torch.manual_seed(0)
    config = tiny_config()
    detector = SimNet(config).keypoint_detector
    generator = torch.Generator().manual_seed(1)
    held_out = random_blobs(8, config.work_size, generator)

    def error(training_mode: bool):
        detector.train(training_mode)
        torch.manual_seed(123)  # the same random affines every time
        with torch.no_grad():
            kp, jac = detector(held_out)
        value, _ = equivariance_losses(detector, held_out, kp, jac, 0.05, 0.0, 3)
        detector.train()
        return value.item()

    # Untrained, with batch statistics (an untrained detector's eval mode is a near-constant
    # network behind the mask prior, which says nothing about learning).
    before = error(True)
    optimiser = torch.optim.Adam(detector.parameters(), lr=2e-3)
    for _ in range(60):
        masks = random_blobs(8, config.work_size, generator)
        kp, jac = detector(masks)
        value, jacobian = equivariance_losses(detector, masks, kp, jac, 0.05, 0.0, 3)
        optimiser.zero_grad()
        (value + jacobian).backward()
        optimiser.step()
    after = error(False)
    assert after < 0.5 * before and after < 0.03, (before, after)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: None, "no images to train on"),
        (lambda d: (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really"), "broken.png"),
        (lambda d: cv2.imwrite(str(d / "art0.regions.png"), np.zeros((10, 10, 3), np.uint8)), "art0.regions.png is 10x10, not 96x96"),
    ],
)
def test_bad_data_folders_are_refused_with_the_reason(tmp_path, make, message):
    data = tmp_path / "data"
    if "no images" in message:
        data.mkdir()
    else:
        write_training_folder(data)
    make(data)
    with pytest.raises(InputError, match=message):
        train(_options(data, tmp_path / "run"))
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_cli_train_errors_and_missing_folder(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nowhere"), "-o", str(tmp_path / "run")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--preset", "huge"]) == 2
    assert main(["train", "--data", str(tmp_path), "--resume", "--init", "x.pt"]) == 2


def test_torchrun_trains_with_two_processes_on_gloo(tmp_path):
    data = write_training_folder(tmp_path / "data")
    script = (
        "import sys; sys.path.insert(0, %r); from tests.simnet_helpers import tiny_config; "
        "from engine.simnet.train import TrainOptions, train; from pathlib import Path; "
        "train(TrainOptions(data=Path(%r), out=Path(%r), steps=3, config=tiny_config(), perceptual=False, quiet=True, checkpoint_every=3))"
    ) % (str(ROOT), str(data), str(tmp_path / "run"))
    (tmp_path / "job.py").write_text(script)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29731", str(tmp_path / "job.py")],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["step"] == 3 and len(state["rng"]) == 2  # both ranks' random streams kept
    assert "module." not in next(iter(state["model"]))  # saved unwrapped, loadable without DDP
