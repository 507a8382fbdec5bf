"""SIM-Net's training losses. Images in [0, 1], masks in [0, 1], shapes (B, C, H, W)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .geometry import band, coordinate_grid, inverse_2x2


def soft_iou_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - (sum xy + 1) / (sum x + sum y - sum xy + 1), averaged over the batch."""
    overlap = (predicted * target).sum(dim=(1, 2, 3))
    union = predicted.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3)) - overlap
    return (1.0 - (overlap + 1.0) / (union + 1.0)).mean()


def boundary_iou_loss(predicted: torch.Tensor, target: torch.Tensor, width: int = 1) -> torch.Tensor:
    """Soft IoU of the masks' contour bands (dilation minus erosion, `width` px each side)."""
    return soft_iou_loss(band(predicted, width), band(target, width))


def masked_l1(predicted: torch.Tensor, truth: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean absolute error where weight (B, 1, H, W) says the truth holds."""
    return ((predicted - truth).abs() * weight).sum() / (weight.sum() * predicted.shape[1] + 1e-6)


def weight_entropy(weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean entropy of per-pixel weights (B, M, H, W), summing to 1 over M, where mask
    (B, 1, H, W) says: 0 for a one-hot choice, log M for an even blend."""
    entropy = -(weights * torch.log(weights.clamp_min(1e-8))).sum(dim=1, keepdim=True)
    return (entropy * mask).sum() / (mask.sum() + 1e-6)


def _gaussian_window(like: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, device=like.device, dtype=like.dtype) - size // 2
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def masked_ssim_loss(predicted: torch.Tensor, truth: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """1 - SSIM (11x11 Gaussian window, per channel), averaged where `weight` says."""
    c = predicted.shape[1]
    window = _gaussian_window(predicted).expand(c, 1, 11, 11)

    def filt(x):
        return F.conv2d(x, window, padding=5, groups=c)

    mu_p, mu_t = filt(predicted), filt(truth)
    var_p = filt(predicted * predicted) - mu_p**2
    var_t = filt(truth * truth) - mu_t**2
    cov = filt(predicted * truth) - mu_p * mu_t
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return ((1.0 - ssim) * weight).sum() / (weight.sum() * c + 1e-6)


def gram_loss(features_a: list[torch.Tensor], features_b: list[torch.Tensor], mask_a, mask_b) -> torch.Tensor:
    """Style distance: squared difference of Gram matrices of masked feature maps (each
    normalised by its mask's area at that scale), relative to the second's magnitude, summed
    over layers (so every layer counts whatever its activation scale)."""
    total: torch.Tensor | float = 0.0
    for fa, fb in zip(features_a, features_b):
        ga, gb = _masked_gram(fa, mask_a), _masked_gram(fb, mask_b)
        total = total + ((ga - gb) ** 2).mean() / ((gb**2).mean() + 1e-12)
    return torch.as_tensor(total)


def _masked_gram(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    b, c, h, w = features.shape
    m = F.interpolate(mask, size=(h, w), mode="area")
    flat = (features * m).reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * (m.sum(dim=(1, 2, 3)) + 1.0))[:, None, None]


def perceptual_loss(features_a: list[torch.Tensor], features_b: list[torch.Tensor]) -> torch.Tensor:
    """L1 between feature maps, layer by layer."""
    return torch.as_tensor(sum(F.l1_loss(fa, fb) for fa, fb in zip(features_a, features_b)))


class RandomWarp:
    """A random affine plus thin-plate spline on normalised coordinates (FOMM's equivariance
    transform). warp_coordinates pulls: transformed(z) = original(T(z))."""

    def __init__(self, batch: int, sigma_affine: float, sigma_tps: float, points: int, like: torch.Tensor):
        self.theta = torch.eye(2, 3, device=like.device, dtype=like.dtype)[None] + sigma_affine * torch.randn(batch, 2, 3, device=like.device, dtype=like.dtype)
        self.control = coordinate_grid(points, points, like).reshape(1, -1, 2)  # (1, P, 2)
        self.tps = sigma_tps * torch.randn(batch, 1, points * points, 2, device=like.device, dtype=like.dtype)

    def warp_coordinates(self, coordinates: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) -> (B, N, 2)."""
        moved = (self.theta[:, None, :, :2] @ coordinates[..., None])[..., 0] + self.theta[:, None, :, 2]
        distances = ((coordinates[:, :, None] - self.control[:, None]) ** 2).sum(dim=-1)  # (B, N, P)
        kernel = distances * torch.log(distances + 1e-6)
        return moved + (kernel[..., None] * self.tps).sum(dim=2)

    def jacobian(self, coordinates: torch.Tensor) -> torch.Tensor:
        """dT/dz at coordinates (B, N, 2) -> (B, N, 2, 2), by autograd."""
        coordinates = coordinates.detach().requires_grad_(True)
        with torch.enable_grad():
            moved = self.warp_coordinates(coordinates)
            grad_x = torch.autograd.grad(moved[..., 0].sum(), coordinates, create_graph=True)[0]
            grad_y = torch.autograd.grad(moved[..., 1].sum(), coordinates, create_graph=True)[0]
        return torch.stack([grad_x, grad_y], dim=-2)

    def deform(self, images: torch.Tensor) -> torch.Tensor:
        b, _, h, w = images.shape
        grid = coordinate_grid(h, w, images).reshape(1, h * w, 2).expand(b, h * w, 2)
        pulled = self.warp_coordinates(grid).reshape(b, h, w, 2)
        return F.grid_sample(images, pulled, mode="bilinear", padding_mode="zeros", align_corners=False)


def equivariance_losses(detector, masks, keypoints, jacobians, sigma_affine, sigma_tps, points):
    """FOMM's equivariance: detect on a randomly warped copy of the masks; its keypoints carried
    through the warp must land on the original keypoints (value loss), and the Jacobians must
    agree through the warp's own Jacobian (Jacobian loss). Returns both."""
    warp = RandomWarp(masks.shape[0], sigma_affine, sigma_tps, points, masks)
    warped_kp, warped_jac = detector(warp.deform(masks))
    value = (keypoints - warp.warp_coordinates(warped_kp)).abs().mean()
    carried = warp.jacobian(warped_kp) @ warped_jac  # (B, K, 2, 2)
    eye = torch.eye(2, device=masks.device, dtype=masks.dtype)
    jacobian = (eye - inverse_2x2(jacobians) @ carried).abs().mean()
    return value, jacobian
