"""Every size and weight of SIM-Net in one place, with the two presets.

Motions per region are the identity, the training-free baseline's alignment (the prior, see
engine.models.moments) and that prior refined at each of K keypoints (see model.py).

`paper` keeps the reference sizes (10 keypoints, G_KP hourglass 32/1024 on 64x64 masks, G_A
64/1024 at 256x256). `small` is the product default, sized for a 2-core CPU: 5 keypoints,
narrow hourglasses, G_A at 128x128 (its per-pixel softmax weights are smooth and upsample well).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class HourglassConfig:
    base: int  # channels after the first down block
    max_channels: int  # channel cap as the width doubles per block
    blocks: int  # down blocks (and as many up blocks)


@dataclass(frozen=True)
class LossWeights:
    equivariance_value: float = 5.0
    equivariance_jacobian: float = 5.0
    mask_iou: float = 10.0
    boundary_iou: float = 1.0
    pixel_l1: float = 4.0
    ssim: float = 1.0
    perceptual: float = 10.0
    gram: float = 0.5
    cycle: float = 6.0
    # Entropy of the per-pixel motion weights inside the target: a blend of shifted copies blurs,
    # a choice does not.
    sharpness: float = 0.2
    # The blended motion against the exact field of a synthetic edit (mean normalised distance
    # where the truth holds): supervises G_KP's keypoints and Jacobians and G_A's choice directly.
    field: float = 20.0


@dataclass(frozen=True)
class SimNetConfig:
    preset: str
    keypoints: int  # K: motions are the identity plus one per keypoint
    work_size: int  # G_A's square working resolution, pixels
    mask_size: int  # G_KP's input: masks are anti-aliased down to this size
    keypoint_net: HourglassConfig
    transport_net: HourglassConfig
    dense_motion_net: HourglassConfig  # G_C, training only
    dense_motion_size: int
    temperature: float = 0.1  # keypoint heatmap softmax
    heatmap_variance: float = 0.01  # Gaussian heatmaps of target keypoints, G_A's input
    head_kernel: int = 7
    texture_band: int = 2  # half-width of the seam band, in working pixels
    texture_channels: int = 16  # width of the texture-guidance residual net
    texture_max_shift: float = 0.08  # bound of the seam correction, in [0, 1] luminance
    losses: LossWeights = field(default_factory=LossWeights)
    feature_blocks: int = 3  # VGG16 blocks used by the perceptual and Gram losses
    feature_size: int = 64  # images are resized to this for those losses (VGG is most of a CPU step)
    learning_rate: float = 2e-4
    batch_size: int = 8
    equivariance_sigma_affine: float = 0.05
    equivariance_sigma_tps: float = 0.005
    equivariance_tps_points: int = 5

    @property
    def motions(self) -> int:
        """M: the identity, the moments prior, and the prior refined at each keypoint."""
        return self.keypoints + 2

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(values: dict) -> SimNetConfig:
        values = dict(values)
        for key in ("keypoint_net", "transport_net", "dense_motion_net"):
            values[key] = HourglassConfig(**values[key])
        values["losses"] = LossWeights(**values["losses"])
        return SimNetConfig(**values)


PRESETS = {
    "paper": SimNetConfig(
        preset="paper",
        keypoints=10,
        work_size=256,
        mask_size=64,
        keypoint_net=HourglassConfig(32, 1024, 5),
        transport_net=HourglassConfig(64, 1024, 5),
        dense_motion_net=HourglassConfig(64, 1024, 5),
        dense_motion_size=64,
        batch_size=8,
        feature_size=256,
    ),
    "small": SimNetConfig(
        preset="small",
        keypoints=5,
        work_size=128,
        mask_size=64,
        keypoint_net=HourglassConfig(16, 128, 4),
        transport_net=HourglassConfig(16, 128, 4),
        dense_motion_net=HourglassConfig(16, 64, 3),
        dense_motion_size=64,
        batch_size=8,
    ),
}


def preset(name: str) -> SimNetConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset '{name}'; choose one of: {', '.join(sorted(PRESETS))}") from None
