"""PyTorch checkpoint -> ONNX graphs with a model card and a numerical parity check."""
