"""SIM-Net in PyTorch: the networks, their training and the pieces export needs.

torch is imported only by this package (the `train` extra); the inference engine runs the
exported ONNX graphs and never imports it.
"""
