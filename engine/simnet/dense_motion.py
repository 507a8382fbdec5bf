"""G_C, the dense-motion network (training only): blends the M sampling fields into one
flow, FOMM style, so that G_KP can be trained through a cycle loss. Inference never calls it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Hourglass
from .config import SimNetConfig
from .geometry import AntialiasedResize, gaussian_heatmaps, sampling_fields, warp


class DenseMotionNetwork(nn.Module):
    """exemplar (B, 3, S, S), source mask (B, 1, S, S), motions (B, M, 2, 3), keypoints of both
    masks (B, K, 2) -> one pulling flow (B, s, s, 2) at dense_motion_size s."""

    def __init__(self, config: SimNetConfig):
        super().__init__()
        motions = config.motions
        self.size = config.dense_motion_size
        self.resize = AntialiasedResize(4, config.dense_motion_size, config.work_size)
        self.variance = config.heatmap_variance
        self.hourglass_inputs = 5 * motions
        self.unplaced = motions - config.keypoints
        self.hourglass = Hourglass(5 * motions, config.dense_motion_net)
        self.head = nn.Conv2d(self.hourglass.out_channels, motions, config.head_kernel, padding=config.head_kernel // 2)

    def forward(self, exemplar, source_mask, motions, keypoints_src, keypoints_tgt):
        s = self.size
        small = self.resize(torch.cat([exemplar * source_mask, source_mask], dim=1))
        fields = sampling_fields(motions, s, s)  # (B, M, s, s, 2)
        warped = warp(small, fields)  # (B, M, 4, s, s)
        difference = gaussian_heatmaps(keypoints_tgt, s, s, self.variance) - gaussian_heatmaps(keypoints_src, s, s, self.variance)
        unplaced = torch.zeros_like(difference[:, :1]).expand(-1, self.unplaced, -1, -1)
        difference = torch.cat([unplaced, difference], dim=1)[:, :, None]
        inputs = torch.cat([difference, warped], dim=2).reshape(-1, self.hourglass_inputs, s, s)
        weights = F.softmax(self.head(self.hourglass(inputs)), dim=1)  # (B, M, s, s)
        return (weights[..., None] * fields).sum(dim=1)
