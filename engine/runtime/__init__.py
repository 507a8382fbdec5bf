"""Running exported graphs: ONNX Runtime sessions of a model folder (sessions), the backend
interface the learned model calls (backend) and the blend graph (blend_graph)."""
