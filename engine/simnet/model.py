"""SIM-Net assembled: G_KP, G_A and texture guidance (inference), G_C (training only), and the
two graphs that export writes.

Data flow for one region pair at the working size S:
    masks (B, 1, S, S) --G_KP--> keypoints (B, K, 2), jacobians (B, K, 2, 2), for both masks
    -> local affines (B, K + 1, 2, 3) --G_A--> weights (B, K + 1, S, S)
    -> blend of warped exemplars (B, 3, S, S) --texture guidance--> colour matrix, seam offsets
"""

from __future__ import annotations

import torch
from torch import nn

from .config import SimNetConfig
from .dense_motion import DenseMotionNetwork
from .geometry import local_affines
from .keypoint_detector import KeypointDetector
from .texture_guidance import TextureGuidance, guide
from .transport_network import TransportNetwork, blend


class SimNet(nn.Module):
    def __init__(self, config: SimNetConfig):
        super().__init__()
        self.config = config
        self.keypoint_detector = KeypointDetector(config)
        self.transport = TransportNetwork(config)
        self.texture_guidance = TextureGuidance(config)
        self.dense_motion = DenseMotionNetwork(config)

    def forward(self, exemplar: torch.Tensor, source_mask: torch.Tensor, target_mask: torch.Tensor) -> dict:
        """exemplar (B, 3, S, S) in [0, 1], masks (B, 1, S, S) -> everything the losses need."""
        b = exemplar.shape[0]
        keypoints, jacobians = self.keypoint_detector(torch.cat([source_mask, target_mask]))
        kp_src, kp_tgt = keypoints[:b], keypoints[b:]
        jac_src, jac_tgt = jacobians[:b], jacobians[b:]
        motions = local_affines(kp_src, jac_src, kp_tgt, jac_tgt)  # (B, M, 2, 3)
        weights = self.transport(exemplar, source_mask, target_mask, motions, kp_tgt)
        transported, predicted_mask = blend(exemplar, source_mask, motions, weights, self.config.work_size)
        matrices, offsets = self.texture_guidance(transported, exemplar, source_mask, target_mask)
        image = guide(transported, exemplar, source_mask, matrices, offsets)
        return {
            "keypoints_src": kp_src,
            "keypoints_tgt": kp_tgt,
            "jacobians_src": jac_src,
            "jacobians_tgt": jac_tgt,
            "motions": motions,
            "weights": weights,
            "transported": transported,
            "image": image,
            "mask": predicted_mask,
        }

    def dense_flows(self, exemplar, source_mask, target_mask, out: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """G_C's flows both ways (B, s, s, 2): target -> exemplar and back (the cycle loss)."""
        forward = self.dense_motion(exemplar, source_mask, out["motions"], out["keypoints_src"], out["keypoints_tgt"])
        backward_motions = local_affines(out["keypoints_tgt"], out["jacobians_tgt"], out["keypoints_src"], out["jacobians_src"])
        backward = self.dense_motion(exemplar, target_mask, backward_motions, out["keypoints_tgt"], out["keypoints_src"])
        return forward, backward


class KeypointGraph(nn.Module):
    """Exported graph 1: masks (B, 1, S, S) -> keypoints (B, K, 2), jacobians (B, K, 2, 2)."""

    def __init__(self, model: SimNet):
        super().__init__()
        self.detector = model.keypoint_detector

    def forward(self, masks):
        return self.detector(masks)


class TransportGraph(nn.Module):
    """Exported graph 2: exemplar (B, 3, S, S), source/target masks (B, 1, S, S), keypoints and
    jacobians of both -> weights (B, M, S, S), predicted mask (B, 1, S, S), colour matrices
    (B, 3, 4), seam offsets (B, 1, S, S)."""

    def __init__(self, model: SimNet):
        super().__init__()
        self.transport = model.transport
        self.size = model.config.work_size
        self.texture_guidance = model.texture_guidance

    def forward(self, exemplar, source_mask, target_mask, keypoints_src, jacobians_src, keypoints_tgt, jacobians_tgt):
        motions = local_affines(keypoints_src, jacobians_src, keypoints_tgt, jacobians_tgt)
        weights = self.transport(exemplar, source_mask, target_mask, motions, keypoints_tgt)
        transported, predicted_mask = blend(exemplar, source_mask, motions, weights, self.size)
        matrices, offsets = self.texture_guidance(transported, exemplar, source_mask, target_mask)
        return weights, predicted_mask, matrices, offsets


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
