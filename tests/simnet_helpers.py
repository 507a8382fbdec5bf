"""Shared pieces of the SIM-Net tests: a tiny configuration (seconds per run on a CPU) and
small training folders."""

from pathlib import Path

import cv2
import numpy as np

from engine.simnet.config import HourglassConfig, SimNetConfig


def tiny_config(**changes) -> SimNetConfig:
    values = dict(
        preset="tiny",
        keypoints=3,
        work_size=32,
        mask_size=16,
        keypoint_net=HourglassConfig(8, 16, 2),
        transport_net=HourglassConfig(8, 16, 2),
        dense_motion_net=HourglassConfig(8, 16, 2),
        dense_motion_size=16,
        batch_size=4,
        feature_size=32,
        learning_rate=1e-3,
    )
    values.update(changes)
    return SimNetConfig(**values)


def write_training_folder(folder: Path, count: int = 2, size: int = 96, seed: int = 0) -> Path:
    """Artworks made of a few flat-ish coloured blobs with texture, each with its region map."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ys, xs = np.mgrid[0:size, 0:size]
    for i in range(count):
        labels = np.zeros((size, size), np.int32)
        for region in (1, 2):
            cx, cy, r = rng.uniform(0.3, 0.7) * size, rng.uniform(0.3, 0.7) * size, rng.uniform(0.15, 0.25) * size
            labels[(xs - cx) ** 2 + ((ys - cy) * rng.uniform(0.7, 1.3)) ** 2 < r * r] = region
        palette = rng.uniform(0.1, 0.9, size=(3, 3))
        pixels = palette[labels] + 0.08 * np.sin(xs / 3.0 + region)[..., None] * rng.uniform(0.5, 1.0, 3)
        cv2.imwrite(str(folder / f"art{i}.png"), (np.clip(pixels, 0, 1)[:, :, ::-1] * 255).astype(np.uint8))
        colours = np.array([[255, 255, 255], [255, 0, 0], [0, 0, 255]], np.uint8)[labels]
        cv2.imwrite(str(folder / f"art{i}.regions.png"), colours[:, :, ::-1])
    return folder
