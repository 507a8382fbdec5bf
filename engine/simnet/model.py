"""SIM-Net assembled: G_KP, G_A and texture guidance (inference), G_C (training only), and the
two graphs that export writes.

The keypoints refine a prior. Every region pair comes with the training-free baseline's
alignment P (engine.models.moments: moments, contour rotation, stay or move), a pulling affine
from the target region into the exemplar region. G_KP reads the exemplar mask pulled by P (the
"aligned" mask) and the target mask; their local affines R_k (FOMM's formula) describe what P
leaves unexplained, and the motions are P composed with them. An affine edit leaves the aligned
and target masks alike, so every R_k is the identity whatever the training, and the networks
only ever learn the residual: the small, local deformations that the equivariance loss trains
well, instead of large correspondences from two unrelated detections.

Data flow for one region pair at the working size S:
    source mask --P--> aligned (B, 1, S, S); aligned, target --G_KP--> keypoints (B, K, 2),
    jacobians (B, K, 2, 2) each
    -> motions (B, M, 2, 3) = [identity, P, P o R_1 .. P o R_K], M = K + 2
    --G_A--> weights (B, M, S, S) -> blend of warped exemplars (B, 3, S, S)
    --texture guidance--> colour matrix, seam offsets
"""

from __future__ import annotations

import torch
from torch import nn

from .config import SimNetConfig
from .dense_motion import DenseMotionNetwork
from .geometry import compose_affines, invert_affines, local_affines, warp_by
from .keypoint_detector import KeypointDetector
from .texture_guidance import TextureGuidance, guide
from .transport_network import TransportNetwork, blend, warped_copies


def refined_motions(prior, keypoints_aligned, jacobians_aligned, keypoints_tgt, jacobians_tgt) -> torch.Tensor:
    """prior (B, 2, 3), keypoints (B, K, 2) and jacobians (B, K, 2, 2) of the aligned and target
    masks -> (B, K + 2, 2, 3): the identity, the prior, the prior refined at each keypoint."""
    residual = local_affines(keypoints_aligned, jacobians_aligned, keypoints_tgt, jacobians_tgt)  # identity first
    return torch.cat([residual[:, :1], compose_affines(prior, residual)], dim=1)


def source_keypoints(prior, keypoints_aligned) -> torch.Tensor:
    """Aligned-mask keypoints (B, K, 2) carried into the exemplar by the prior (B, 2, 3)."""
    return (prior[:, None, :, :2] @ keypoints_aligned[..., None])[..., 0] + prior[:, None, :, 2]


class SimNet(nn.Module):
    def __init__(self, config: SimNetConfig):
        super().__init__()
        self.config = config
        self.keypoint_detector = KeypointDetector(config)
        self.transport = TransportNetwork(config)
        self.texture_guidance = TextureGuidance(config)
        self.dense_motion = DenseMotionNetwork(config)

    def forward(self, exemplar, source_mask, target_mask, prior) -> dict:
        """exemplar (B, 3, S, S) in [0, 1], masks (B, 1, S, S), prior (B, 2, 3) -> everything
        the losses need."""
        b = exemplar.shape[0]
        aligned = warp_by(source_mask, prior, self.config.work_size)
        keypoints, jacobians = self.keypoint_detector(torch.cat([aligned, target_mask]))
        kp_aligned, kp_tgt = keypoints[:b], keypoints[b:]
        jac_aligned, jac_tgt = jacobians[:b], jacobians[b:]
        motions = refined_motions(prior, kp_aligned, jac_aligned, kp_tgt, jac_tgt)  # (B, M, 2, 3)
        copies = warped_copies(exemplar, source_mask, motions, self.config.work_size)
        weights = self.transport(copies, target_mask, kp_tgt)
        transported, predicted_mask = blend(copies, weights)
        matrices, offsets = self.texture_guidance(transported, exemplar, source_mask, target_mask)
        image = guide(transported, exemplar, source_mask, matrices, offsets)
        return {
            "aligned_mask": aligned,
            "keypoints_aligned": kp_aligned,
            "keypoints_src": source_keypoints(prior, kp_aligned),
            "keypoints_tgt": kp_tgt,
            "jacobians_aligned": jac_aligned,
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
        backward = self.dense_motion(exemplar, target_mask, invert_affines(out["motions"]), out["keypoints_tgt"], out["keypoints_src"])
        return forward, backward


class KeypointGraph(nn.Module):
    """Exported graph 1: masks (B, 1, S, S), each pulled by its prior (B, 2, 3) (the identity
    for target masks) -> keypoints (B, K, 2), jacobians (B, K, 2, 2)."""

    def __init__(self, model: SimNet):
        super().__init__()
        self.detector = model.keypoint_detector
        self.size = model.config.work_size

    def forward(self, masks, priors):
        return self.detector(warp_by(masks, priors, self.size))


class TransportGraph(nn.Module):
    """Exported graph 2: exemplar (B, 3, S, S), source/target masks (B, 1, S, S), the prior
    (B, 2, 3), keypoints and jacobians of the aligned and target masks -> weights (B, M, S, S),
    predicted mask (B, 1, S, S), colour matrices (B, 3, 4), seam offsets (B, 1, S, S)."""

    def __init__(self, model: SimNet):
        super().__init__()
        self.transport = model.transport
        self.size = model.config.work_size
        self.texture_guidance = model.texture_guidance

    def forward(self, exemplar, source_mask, target_mask, prior, keypoints_aligned, jacobians_aligned, keypoints_tgt, jacobians_tgt):
        motions = refined_motions(prior, keypoints_aligned, jacobians_aligned, keypoints_tgt, jacobians_tgt)
        copies = warped_copies(exemplar, source_mask, motions, self.size)
        weights = self.transport(copies, target_mask, keypoints_tgt)
        transported, predicted_mask = blend(copies, weights)
        matrices, offsets = self.texture_guidance(transported, exemplar, source_mask, target_mask)
        return weights, predicted_mask, matrices, offsets


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
