"""What the learned model calls to run SIM-Net's two graphs: ONNX Runtime in the engine
(engine.runtime.sessions.OnnxBackend), or PyTorch on a checkpoint for parity checks
(engine.simnet.backend.TorchBackend). S is the model's working size, K its keypoints, M = K + 1
its motions; every array is float32."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Backend(Protocol):
    work_size: int  # S

    def keypoints(self, masks: np.ndarray, priors: np.ndarray) -> tuple[np.ndarray, ...]:
        """masks (B, 1, S, S), each pulled by its prior (B, 2, 3) -> keypoints (B, K, 2),
        jacobians (B, K, 2, 2)."""
        ...

    def transport(self, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        """The transport graph's inputs in engine.runtime.sessions.TRANSPORT_INPUTS order ->
        weights (B, M, S, S), mask (B, 1, S, S), colour matrices (B, 3, 4), seam offsets
        (B, 1, S, S)."""
        ...
