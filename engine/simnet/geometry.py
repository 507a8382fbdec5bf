"""Coordinates and warps in torch, written so every graph exports to ONNX: grids come from
`arange`, 2x2 inverses and square roots are closed-form, no `affine_grid`, no `torch.inverse`.

Conventions are engine.motion's: normalised coordinates in [-1, 1], x first, pixel centres at
(2 i + 1) / n - 1 (`grid_sample(..., align_corners=False)`); a motion pulls target points back
into the exemplar.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MIN_DETERMINANT = 1e-6  # as engine.motion


def coordinate_grid(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """Normalised pixel centres -> (H, W, 2), x first, on `like`'s device and dtype."""
    xs = (2.0 * torch.arange(width, device=like.device, dtype=like.dtype) + 1.0) / width - 1.0
    ys = (2.0 * torch.arange(height, device=like.device, dtype=like.dtype) + 1.0) / height - 1.0
    return torch.stack([xs[None, :].expand(height, width), ys[:, None].expand(height, width)], dim=-1)


def inverse_2x2(matrices: torch.Tensor) -> torch.Tensor:
    """(..., 2, 2) -> (..., 2, 2), with near-singular determinants kept away from zero."""
    a, b = matrices[..., 0, 0], matrices[..., 0, 1]
    c, d = matrices[..., 1, 0], matrices[..., 1, 1]
    det = a * d - b * c
    sign = torch.where(det < 0, -torch.ones_like(det), torch.ones_like(det))
    det = torch.where(det.abs() < MIN_DETERMINANT, sign * MIN_DETERMINANT, det)
    row0 = torch.stack([d, -b], dim=-1)
    row1 = torch.stack([-c, a], dim=-1)
    return torch.stack([row0, row1], dim=-2) / det[..., None, None]


def sqrt_spd_2x2(matrices: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of symmetric positive-definite (..., 2, 2) matrices, closed form:
    sqrt(C) = (C + s I) / t with s = sqrt(det C), t = sqrt(trace C + 2 s)."""
    a, b, d = matrices[..., 0, 0], matrices[..., 0, 1], matrices[..., 1, 1]
    s = torch.sqrt(torch.clamp(a * d - b * b, min=1e-12))
    t = torch.sqrt(torch.clamp(a + d + 2.0 * s, min=1e-12))
    row0 = torch.stack([(a + s) / t, b / t], dim=-1)
    row1 = torch.stack([b / t, (d + s) / t], dim=-1)
    return torch.stack([row0, row1], dim=-2)


def mask_moments(masks: torch.Tensor, size: int, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft masks (B, 1, size, size) -> centroids (B, 2) and covariances (B, 2, 2), normalised
    units. Each pixel's own extent is included (1/3 of a squared half-cell), so a one-pixel mask
    has a proper covariance. Sizes are plain ints here and below: exported grids are constants."""
    h = w = size
    grid = coordinate_grid(h, w, masks).reshape(1, h * w, 2)
    weights = masks.reshape(-1, h * w, 1)
    total = weights.sum(dim=1) + eps  # (B, 1)
    centroid = (weights * grid).sum(dim=1) / total  # (B, 2)
    offsets = grid - centroid[:, None, :]  # (B, HW, 2)
    covariance = (weights * offsets).transpose(1, 2) @ offsets / total[:, :, None]  # (B, 2, 2)
    cell = torch.tensor([[1.0 / w**2, 0.0], [0.0, 1.0 / h**2]], device=masks.device, dtype=masks.dtype) / 3.0
    return centroid, covariance + cell


def local_affines(
    keypoints_src: torch.Tensor,
    jacobians_src: torch.Tensor,
    keypoints_tgt: torch.Tensor,
    jacobians_tgt: torch.Tensor,
) -> torch.Tensor:
    """(B, K, 2), (B, K, 2, 2) for both masks -> (B, K + 1, 2, 3) pulling motions, identity first:
    T_k(z) = p_k^src + J_k^src (J_k^tgt)^-1 (z - p_k^tgt)."""
    linear = jacobians_src @ inverse_2x2(jacobians_tgt)  # (B, K, 2, 2)
    offset = keypoints_src - (linear @ keypoints_tgt[..., None])[..., 0]  # (B, K, 2)
    motions = torch.cat([linear, offset[..., None]], dim=-1)  # (B, K, 2, 3)
    identity = torch.zeros_like(motions[:, :1])
    identity[..., 0, 0] = 1.0
    identity[..., 1, 1] = 1.0
    return torch.cat([identity, motions], dim=1)


def compose_affines(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """The pulling motion that applies `inner`, then `outer`: z -> outer(inner(z)).
    outer (B, 2, 3), inner (B, M, 2, 3) -> (B, M, 2, 3)."""
    linear = outer[:, None, :, :2] @ inner[..., :2]  # (B, M, 2, 2)
    shift = (outer[:, None, :, :2] @ inner[..., 2:])[..., 0] + outer[:, None, :, 2]  # (B, M, 2)
    return torch.cat([linear, shift[..., None]], dim=-1)


def invert_affines(affines: torch.Tensor) -> torch.Tensor:
    """(..., 2, 3) -> (..., 2, 3): the inverse motions (closed-form 2x2 inverse)."""
    linear = inverse_2x2(affines[..., :2])
    shift = -(linear @ affines[..., 2:])
    return torch.cat([linear, shift], dim=-1)


def warp_by(images: torch.Tensor, affines: torch.Tensor, size: int) -> torch.Tensor:
    """images (B, C, size, size) each pulled by its own motion (B, 2, 3) -> (B, C, size, size).
    `size` is a plain int so that the exported grid is a constant."""
    return warp(images, sampling_fields(affines[:, None], size, size))[:, 0]


def sampling_fields(affines: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Motions (B, M, 2, 3) evaluated at every pixel -> grid_sample grids (B, M, H, W, 2)."""
    grid = coordinate_grid(height, width, affines)  # (H, W, 2)
    columns = affines[:, :, None, None].transpose(-1, -2)  # (B, M, 1, 1, 3, 2): x, y and shift columns
    # Multiply-adds, not a matmul: ONNX Runtime's batched 2x2 MatMul over every pixel cost more than
    # the hourglass's convolutions.
    return grid[..., :1] * columns[..., 0, :] + grid[..., 1:] * columns[..., 1, :] + columns[..., 2, :]


def blended_field(motions: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Motions (B, M, 2, 3) mixed per pixel by weights (B, M, S, S) -> the pulling field they
    amount to (B, S, S, 2), normalised: where each target pixel's colour comes from."""
    fields = sampling_fields(motions, weights.shape[2], weights.shape[3])  # (B, M, S, S, 2)
    return (weights[..., None] * fields).sum(dim=1)


def warp(images: torch.Tensor, fields: torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """Sample images (B, C, H, W) with fields (B, M, h, w, 2) -> (B, M, C, h, w)."""
    b, m, h, w, _ = fields.shape
    c = images.shape[1]
    repeated = images[:, None].expand(b, m, c, images.shape[2], images.shape[3]).reshape(b * m, c, images.shape[2], images.shape[3])
    warped = F.grid_sample(repeated, fields.reshape(b * m, h, w, 2), mode="bilinear", padding_mode=padding, align_corners=False)
    return warped.reshape(b, m, c, h, w)


def gaussian_heatmaps(keypoints: torch.Tensor, height: int, width: int, variance: float) -> torch.Tensor:
    """Keypoints (B, K, 2) -> unnormalised Gaussian heatmaps (B, K, H, W)."""
    grid = coordinate_grid(height, width, keypoints)  # (H, W, 2)
    squared = ((grid[None, None] - keypoints[:, :, None, None, :]) ** 2).sum(dim=-1)
    return torch.exp(-0.5 * squared / variance)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian (n,), n = 2 round(4 sigma) + 1."""
    radius = max(1, round(4 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


class AntialiasedResize(nn.Module):
    """(B, channels, from_size, from_size) -> (B, channels, size, size): a Gaussian blur matched
    to the scale (sigma 1.5 for SIM-Net's 4x reduction of G_KP's masks), then bilinear. The
    kernels are buffers of fixed shape, so the exported graph has constant convolutions."""

    kernel_x: torch.Tensor
    kernel_y: torch.Tensor

    def __init__(self, channels: int, size: int, from_size: int):
        super().__init__()
        self.size = size
        scale = from_size / size
        self.blur = scale > 1.0
        kernel = gaussian_kernel((scale - 1.0) / 2.0) if self.blur else torch.ones(1)
        n = kernel.numel()
        self.pad = n // 2
        self.register_buffer("kernel_x", kernel.view(1, 1, 1, n).repeat(channels, 1, 1, 1), persistent=False)
        self.register_buffer("kernel_y", kernel.view(1, 1, n, 1).repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.blur:
            groups = self.kernel_x.shape[0]
            images = F.pad(images, (self.pad, self.pad, self.pad, self.pad), mode="replicate")
            images = F.conv2d(F.conv2d(images, self.kernel_x, groups=groups), self.kernel_y, groups=groups)
        return F.interpolate(images, size=(self.size, self.size), mode="bilinear", align_corners=False)


def band(masks: torch.Tensor, width: int) -> torch.Tensor:
    """The band of `width` pixels on both sides of a mask's edge: dilation minus erosion.
    (B, 1, H, W) in [0, 1] -> (B, 1, H, W)."""
    kernel = 2 * width + 1
    dilated = F.max_pool2d(masks, kernel, stride=1, padding=width)
    eroded = -F.max_pool2d(-masks, kernel, stride=1, padding=width)
    return dilated - eroded
