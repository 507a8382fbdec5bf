"""The hourglass that every SIM-Net network is built on (FOMM's encoder-decoder with skip
concatenation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import HourglassConfig


class DownBlock(nn.Module):
    """conv 3x3, batch norm, ReLU, 2x average pool: (B, C_in, H, W) -> (B, C_out, H/2, W/2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.relu(self.norm(self.conv(x))), 2)


class UpBlock(nn.Module):
    """2x nearest upsample, conv 3x3, batch norm, ReLU: (B, C_in, H, W) -> (B, C_out, 2H, 2W)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))))


class Hourglass(nn.Module):
    """(B, C_in, H, W) -> (B, out_channels, H, W), out_channels = base + C_in.

    H and W must be divisible by 2 ** blocks. Channels double per down block from `base`,
    capped at `max_channels`; each up block concatenates the matching down block's input."""

    def __init__(self, in_channels: int, config: HourglassConfig):
        super().__init__()
        widths = [in_channels] + [min(config.max_channels, config.base * 2**i) for i in range(1, config.blocks + 1)]
        self.down = nn.ModuleList(DownBlock(widths[i], widths[i + 1]) for i in range(config.blocks))
        ups = []
        for i in reversed(range(config.blocks)):
            incoming = widths[i + 1] * (1 if i == config.blocks - 1 else 2)
            ups.append(UpBlock(incoming, widths[i] if i > 0 else config.base))
        self.up = nn.ModuleList(ups)
        self.out_channels = config.base + in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [x]
        for block in self.down:
            skips.append(block(skips[-1]))
        out = skips.pop()
        for block in self.up:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return out
