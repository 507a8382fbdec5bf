"""G_KP, the mask-based correspondence network: one region mask -> K keypoints and Jacobians.

Two departures from the reference, both to make a small network learn fast and stay sane:
- The heatmap logits get log(mask): keypoints are expectations over the region itself, so they
  can never drift off it (a soft constraint, since the mask is anti-aliased).
- Jacobians are the network's 2x2 matrices applied to the mask's own shape, J = C^1/2 J_net,
  with C the mask's covariance. Since motions use J_src J_tgt^-1, an untrained detector already
  gives the moments alignment C_src^1/2 C_tgt^-1/2 (the training-free baseline); training only
  has to learn the rest (rotation, local deformation), which moments cannot see.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Hourglass
from .config import SimNetConfig
from .geometry import AntialiasedResize, coordinate_grid, mask_moments, sqrt_spd_2x2

# Keeps log(mask) finite; a heatmap can still reach a pixel the mask barely touches.
MASK_FLOOR = 1e-4


class KeypointDetector(nn.Module):
    """masks (B, 1, S, S) in [0, 1] -> keypoints (B, K, 2) normalised, jacobians (B, K, 2, 2)."""

    def __init__(self, config: SimNetConfig):
        super().__init__()
        self.resize = AntialiasedResize(1, config.mask_size, config.work_size)
        self.mask_size, self.work_size, self.keypoints = config.mask_size, config.work_size, config.keypoints
        self.temperature = config.temperature
        self.hourglass = Hourglass(1, config.keypoint_net)
        pad = config.head_kernel // 2
        self.heatmap_head = nn.Conv2d(self.hourglass.out_channels, config.keypoints, config.head_kernel, padding=pad)
        # One shared 4-channel map pooled by each heatmap; starts as the identity.
        self.jacobian_head = nn.Conv2d(self.hourglass.out_channels, 4, config.head_kernel, padding=pad)
        nn.init.zeros_(self.jacobian_head.weight)
        assert self.jacobian_head.bias is not None  # Conv2d has one by default
        with torch.no_grad():
            self.jacobian_head.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0]))

    def forward(self, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        small = self.resize(masks)  # (B, 1, s, s)
        features = self.hourglass(small)  # (B, F, s, s)
        logits = self.heatmap_head(features) / self.temperature + torch.log(small + MASK_FLOOR)  # (B, K, s, s)
        k, h, w = self.keypoints, self.mask_size, self.mask_size
        heatmaps = F.softmax(logits.reshape(-1, k, h * w), dim=2).reshape(-1, k, h, w, 1)
        grid = coordinate_grid(h, w, masks)  # (s, s, 2)
        keypoints = (heatmaps * grid).sum(dim=(2, 3))  # (B, K, 2)
        raw = self.jacobian_head(features).permute(0, 2, 3, 1)[:, None]  # (B, 1, s, s, 4)
        pooled = (heatmaps * raw).sum(dim=(2, 3)).reshape(-1, k, 2, 2)  # (B, K, 2, 2)
        _, covariance = mask_moments(masks, self.work_size)
        shape = sqrt_spd_2x2(covariance)[:, None]  # (B, 1, 2, 2)
        return keypoints, shape @ pooled
