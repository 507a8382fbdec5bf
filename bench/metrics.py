"""Quality metrics for the benchmark. Images are engine pixels (H, W, C) float32; label maps
(H, W) int. The perceptual and Gram metrics need torch and stlpips-pytorch (the `train` extra)
and are reported as missing without them."""

from __future__ import annotations

import cv2
import numpy as np
from skimage.metrics import structural_similarity

PERCEPTUAL_SIZE = 256  # long side at which the feature network sees both images
BOUNDARY_TOLERANCE = 2  # pixels


def psnr(result: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    error = (np.clip(result, 0, 1) - np.clip(truth, 0, 1)) ** 2
    mse = error.mean() if mask is None else error[mask].mean() if mask.any() else 0.0
    return float(10 * np.log10(1.0 / max(mse, 1e-10)))


def ssim(result: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    _, similarity = structural_similarity(
        np.clip(truth, 0, 1), np.clip(result, 0, 1), channel_axis=2, data_range=1.0, full=True
    )
    similarity = similarity.mean(axis=2)
    return float(similarity.mean() if mask is None or not mask.any() else similarity[mask].mean())


def region_iou(predicted: np.ndarray, target: np.ndarray, regions: np.ndarray) -> float:
    """Mean IoU over `regions` of predicted vs target label maps."""
    scores = []
    for region in regions:
        a, b = predicted == region, target == region
        union = (a | b).sum()
        if union:
            scores.append((a & b).sum() / union)
    return float(np.mean(scores)) if scores else 1.0


def _boundaries(labels: np.ndarray) -> np.ndarray:
    edge = np.zeros(labels.shape, bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    return edge


def boundary_f_score(predicted: np.ndarray, target: np.ndarray, tolerance: int = BOUNDARY_TOLERANCE) -> float:
    """F-score of region boundaries: a boundary pixel counts when the other map has one within
    `tolerance` pixels."""
    a, b = _boundaries(predicted), _boundaries(target)
    if not a.any() and not b.any():
        return 1.0
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tolerance + 1,) * 2)
    near_a = cv2.dilate(a.astype(np.uint8), kernel) > 0
    near_b = cv2.dilate(b.astype(np.uint8), kernel) > 0
    precision = (a & near_b).sum() / max(a.sum(), 1)
    recall = (b & near_a).sum() / max(b.sum(), 1)
    return float(2 * precision * recall / max(precision + recall, 1e-12))


class FeatureMetrics:
    """Perceptual distance to the ground truth and Gram style distance to the exemplar, on the
    stlpips VGG16; `available` is False (and both metrics None) without torch."""

    def __init__(self):
        try:
            import torch

            from engine.simnet.perceptual import PerceptualNet, gram_matrices, to_tensor
        except (ImportError, RuntimeError):
            self.available = False
            return
        try:
            self.net = PerceptualNet()
        except RuntimeError:
            self.available = False
            return
        self.available = True
        self.torch, self.gram_matrices, self.to_tensor = torch, gram_matrices, to_tensor
        self._style_key, self._style = None, None

    def _small(self, pixels: np.ndarray):
        h, w = pixels.shape[:2]
        scale = min(1.0, PERCEPTUAL_SIZE / max(h, w))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return self.to_tensor(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1))

    def perceptual(self, result: np.ndarray, truth: np.ndarray) -> float | None:
        if not self.available:
            return None
        with self.torch.no_grad():
            return float(self.net.distance(self._small(result), self._small(truth))[0])

    def gram(self, result: np.ndarray, exemplar: np.ndarray) -> float | None:
        """Mean squared difference of Gram matrices (x1e3, summed over the five blocks)."""
        if not self.available:
            return None
        with self.torch.no_grad():
            if self._style_key is not exemplar:
                self._style_key, self._style = exemplar, self.gram_matrices(self.net(self._small(exemplar)))
            grams = self.gram_matrices(self.net(self._small(result)))
            return float(sum(((g - s) ** 2).mean() for g, s in zip(grams, self._style)) * 1e3)
