"""G_A, the image transport module: per-pixel weights over the M = K + 2 motions (the identity,
the prior, the prior refined at each keypoint; see model.py).

Input per motion m (SIM-Net's 5 channels): a Gaussian heatmap of the target keypoint (zeros for
the identity and the prior), the signed mismatch warp_m(source mask) - target mask, and warp_m(exemplar region)
in RGB; plus the target mask once. An hourglass and a 7x7 head give K + 1 logits per pixel,
softmaxed over motions. The region's image is then the weighted blend of the warped copies,
each motion's vote gated by whether its sample lands inside the source region (as the engine's
full-resolution transport does, see engine.blend), so training and inference agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Hourglass
from .config import SimNetConfig
from .geometry import gaussian_heatmaps, sampling_fields, warp

# As engine.blend.OUTSIDE_REGION_WEIGHT.
OUTSIDE_REGION_WEIGHT = 1e-3


class TransportNetwork(nn.Module):
    """Warped copies of the exemplar region under the M motions, the target mask and the
    target keypoints -> weights (B, M, S, S) summing to 1 over M (see `forward`)."""

    def __init__(self, config: SimNetConfig):
        super().__init__()
        motions = config.motions
        self.variance = config.heatmap_variance
        self.size, self.motions = config.work_size, motions
        self.unplaced = motions - config.keypoints  # motions without a keypoint: identity, prior
        self.hourglass = Hourglass(5 * motions + 1, config.transport_net)
        self.head = nn.Conv2d(self.hourglass.out_channels, motions, config.head_kernel, padding=config.head_kernel // 2)

    def forward(self, copies, target_mask, keypoints_tgt):
        """copies (B, M, 7, S, S) from `warped_copies`, target mask (B, 1, S, S), target
        keypoints (B, K, 2) -> weights (B, M, S, S)."""
        m, size = self.motions, self.size
        heatmaps = gaussian_heatmaps(keypoints_tgt, size, size, self.variance)  # (B, K, S, S)
        unplaced = torch.zeros_like(heatmaps[:, :1]).expand(-1, self.unplaced, -1, -1)
        heatmaps = torch.cat([unplaced, heatmaps], dim=1)[:, :, None]
        mismatch = copies[:, :, 3:4] - target_mask[:, None]
        per_motion = torch.cat([heatmaps, mismatch, copies[:, :, :3]], dim=2)  # (B, M, 5, S, S)
        inputs = torch.cat([per_motion.reshape(-1, 5 * m, size, size), target_mask], dim=1)
        return F.softmax(self.head(self.hourglass(inputs)), dim=1)


def warped_copies(exemplar, source_mask, motions, size: int):
    """Everything G_A and the blend read, warped by every motion in one sampling pass.

    exemplar (B, 3, H, W), source_mask (B, 1, H, W), motions (B, M, 2, 3) -> (B, M, 7, size,
    size): the region's RGB (exemplar * mask), its mask, the whole exemplar's RGB."""
    fields = sampling_fields(motions, size, size)  # (B, M, S, S, 2)
    return warp(torch.cat([exemplar * source_mask, source_mask, exemplar], dim=1), fields)


def blend(copies, weights):
    """The region's image and mask from the weights over the warped copies.

    copies (B, M, 7, S, S) from `warped_copies`, weights (B, M, S, S) -> image (B, 3, S, S),
    predicted mask (B, 1, S, S)."""
    warped_mask, warped_image = copies[:, :, 3], copies[:, :, 4:]
    votes = weights * (warped_mask + OUTSIDE_REGION_WEIGHT)
    image = (votes[:, :, None] * warped_image).sum(dim=1) / votes.sum(dim=1, keepdim=True).clamp_min(1e-12)
    mask = (weights * warped_mask).sum(dim=1, keepdim=True)
    return image, mask
