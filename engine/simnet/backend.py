"""The same two graphs as the ONNX export, run in PyTorch: for checking that the engine gives
the same result from the exported graphs as from the checkpoint they came from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .model import KeypointGraph, TransportGraph
from .train import model_from_checkpoint


class TorchBackend:
    """engine.runtime.backend.Backend on a training checkpoint (CPU, fp32)."""

    def __init__(self, checkpoint: Path):
        model = model_from_checkpoint(checkpoint)
        self.work_size = model.config.work_size
        self._keypoints = KeypointGraph(model).eval()
        self._transport = TransportGraph(model).eval()

    @torch.no_grad()
    def keypoints(self, masks: np.ndarray, priors: np.ndarray):
        return tuple(t.numpy() for t in self._keypoints(torch.from_numpy(masks), torch.from_numpy(priors)))

    @torch.no_grad()
    def transport(self, *inputs):
        return tuple(t.numpy() for t in self._transport(*(torch.from_numpy(np.ascontiguousarray(a)) for a in inputs)))
