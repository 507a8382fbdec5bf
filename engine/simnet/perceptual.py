"""A perceptual feature network that needs no download: VGG16 trained for perceptual
similarity, as shipped in the `stlpips-pytorch` package (the `train` extra).

Only the weight file `vgg_shift_tolerant.pth` is used; this loader is our own (one file of that
package carries a non-commercial licence header, so none of its code is imported). The network is
VGG16's 13 convolutions with anti-aliased pooling (max-pool of stride 1, then a fixed 3x3 blur
applied with stride 2 after reflection padding), read out after each of its five blocks. With the
package's 1x1 heads it gives an LPIPS-style distance; its features also give Gram-matrix style
distances. torch is imported here and only here: inference never imports this module.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..io.pixels import rgb_channels

# (convolutions per block, channels): VGG16's configuration "D".
BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


def weight_file() -> Path:
    spec = importlib.util.find_spec("stlpips_pytorch")
    if spec is None or spec.origin is None:
        raise RuntimeError("the perceptual network needs `pip install stlpips-pytorch==0.0.2` (the train extra)")
    return Path(spec.origin).parent / "weights" / "vST0.0" / "vgg_shift_tolerant.pth"


class PerceptualNet(torch.nn.Module):
    """Images (B, 3, H, W) in [0, 1] -> five feature maps, relu1_2 .. relu5_3."""

    shift: torch.Tensor  # buffers: the input normalisation
    scale: torch.Tensor

    def __init__(self):
        super().__init__()
        state = torch.load(weight_file(), map_location="cpu", weights_only=True)
        self.register_buffer("shift", state["scaling_layer.shift"])
        self.register_buffer("scale", state["scaling_layer.scale"])
        convs = sorted(
            (k for k in state if k.endswith(".weight") and k.startswith("net.")),
            key=lambda k: int(k.split(".")[2]),
        )
        self.weights = torch.nn.ParameterList(torch.nn.Parameter(state[k], requires_grad=False) for k in convs)
        self.biases = torch.nn.ParameterList(
            torch.nn.Parameter(state[k.replace("weight", "bias")], requires_grad=False) for k in convs
        )
        blurs = sorted((k for k in state if k.endswith(".filt")), key=lambda k: int(k.split(".")[2]))
        for index, key in enumerate(blurs):
            self.register_buffer(f"blur{index}", state[key])
        self.heads = torch.nn.ParameterList(
            torch.nn.Parameter(state[f"lin{i}.model.1.weight"], requires_grad=False) for i in range(5)
        )
        self.eval()

    def forward(self, images: torch.Tensor, blocks: int = len(BLOCKS)) -> list[torch.Tensor]:
        """The first `blocks` feature maps (training uses fewer to save time)."""
        x = (images * 2.0 - 1.0 - self.shift) / self.scale
        outputs, conv = [], 0
        for block, (count, _) in enumerate(BLOCKS[:blocks]):
            if block > 0:  # anti-aliased pooling
                x = F.max_pool2d(x, kernel_size=2, stride=1)
                x = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), getattr(self, f"blur{block - 1}"), stride=2, groups=x.shape[1])
            for _ in range(count):
                x = F.relu(F.conv2d(x, self.weights[conv], self.biases[conv], padding=1))
                conv += 1
            outputs.append(x)
        return outputs

    def distance(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """LPIPS-style distance per image pair: (B, 3, H, W) x2 -> (B,)."""
        total: torch.Tensor | float = 0.0
        for head, a, b in zip(self.heads, self(first), self(second)):
            a = a / (a.norm(dim=1, keepdim=True) + 1e-10)
            b = b / (b.norm(dim=1, keepdim=True) + 1e-10)
            total = total + F.conv2d((a - b) ** 2, head).mean(dim=(1, 2, 3))
        return torch.as_tensor(total)


def gram_matrices(features: list[torch.Tensor]) -> list[torch.Tensor]:
    """(B, C, H, W) maps -> (B, C, C) Gram matrices, normalised by C * H * W."""
    grams = []
    for f in features:
        b, c, h, w = f.shape
        flat = f.reshape(b, c, h * w)
        grams.append(flat @ flat.transpose(1, 2) / (c * h * w))
    return grams


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """Engine pixels (H, W, C) -> (1, 3, H, W) float32 (grey repeated, alpha dropped)."""
    rgb = rgb_channels(pixels)
    return torch.from_numpy(np.ascontiguousarray(np.clip(rgb, 0, 1).transpose(2, 0, 1)))[None].float()
