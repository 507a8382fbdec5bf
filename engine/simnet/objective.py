"""One training step's losses as one module, so DistributedDataParallel can wrap all of it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import losses
from .geometry import blended_field
from .model import SimNet


class Objective(nn.Module):
    """Batch tensors -> (prediction dict, {loss name: value}, weighted total)."""

    def __init__(self, model: SimNet, features: nn.Module | None):
        super().__init__()
        self.model = model
        self.features = features  # frozen perceptual network, or None to skip its losses

    def forward(self, exemplar, source_mask, target_mask, truth, truth_weight, prior, field):
        config = self.model.config
        w = config.losses
        out = self.model(exemplar, source_mask, target_mask, prior)
        terms = {
            "mask_iou": losses.soft_iou_loss(out["mask"], target_mask),
            "boundary_iou": losses.boundary_iou_loss(out["mask"], target_mask),
            "pixel_l1": losses.masked_l1(out["image"], truth, truth_weight),
            "ssim": losses.masked_ssim_loss(out["image"], truth, truth_weight),
            "sharpness": losses.weight_entropy(out["weights"], target_mask),
            "field": losses.masked_l1(blended_field(out["motions"], out["weights"]).permute(0, 3, 1, 2), field, truth_weight),
        }
        masks = torch.cat([out["aligned_mask"], target_mask])  # what G_KP saw
        keypoints = torch.cat([out["keypoints_aligned"], out["keypoints_tgt"]])
        jacobians = torch.cat([out["jacobians_aligned"], out["jacobians_tgt"]])
        terms["equivariance_value"], terms["equivariance_jacobian"] = losses.equivariance_losses(
            self.model.keypoint_detector, masks, keypoints, jacobians,
            config.equivariance_sigma_affine, config.equivariance_sigma_tps, config.equivariance_tps_points,
        )
        terms["cycle"] = self._cycle(exemplar, source_mask, target_mask, out)
        if self.features is not None:
            terms["perceptual"], terms["gram"] = self._feature_losses(exemplar, source_mask, target_mask, truth, truth_weight, out["image"])
        total = sum(getattr(w, name) * value for name, value in terms.items())
        return out, terms, total

    def _feature_losses(self, exemplar, source_mask, target_mask, truth, truth_weight, image):
        """Perceptual distance to the truth where it holds, and Gram style distance between the
        predicted region and the exemplar region, on the frozen VGG at `feature_size`."""
        config = self.model.config
        size, blocks, b = config.feature_size, config.feature_blocks, exemplar.shape[0]

        def small(x):
            return F.interpolate(x, size=(size, size), mode="area") if x.shape[-1] != size else x

        predicted = self.features(small(torch.cat([image * truth_weight, image * target_mask])), blocks)
        with torch.no_grad():
            reference = self.features(small(torch.cat([truth * truth_weight, exemplar * source_mask])), blocks)
        perceptual = losses.perceptual_loss([f[:b] for f in predicted], [f[:b] for f in reference])
        gram = losses.gram_loss([f[b:] for f in predicted], [f[b:] for f in reference], target_mask, source_mask)
        return perceptual, gram

    def _cycle(self, exemplar, source_mask, target_mask, out):
        """G_C carries the source mask onto the target and back: IoU with the target on the way,
        L1 with the source on return (trains G_KP through G_C's blended flows)."""
        forward, backward = self.model.dense_flows(exemplar, source_mask, target_mask, out)
        small_src, small_tgt = self.model.keypoint_detector.resize(torch.cat([source_mask, target_mask])).split(source_mask.shape[0])
        small_src = F.interpolate(small_src, size=forward.shape[1:3], mode="bilinear", align_corners=False)
        small_tgt = F.interpolate(small_tgt, size=forward.shape[1:3], mode="bilinear", align_corners=False)
        carried = F.grid_sample(small_src, forward, align_corners=False)
        returned = F.grid_sample(carried, backward, align_corners=False)
        return losses.soft_iou_loss(carried, small_tgt) + (returned - small_src).abs().mean()
