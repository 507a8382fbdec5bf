"""The full-resolution blend graph (engine/graphs/blend.onnx): what engine.blend.blend_band
computes with OpenCV, as one ONNX graph that a GPU provider can run (engine/runtime/blend_graph.py).

    python -m export.blend_graph [-o engine/graphs]

Inputs (float32):
    exemplar      (1, C, H, W)   the exemplar in planes
    source_mask   (1, 1, H, W)   where the region may be sampled (engine.masks.region_interior)
    weights       (1, M, h, w)   the M motions' working-resolution weight grids
    motion_theta  (M, 2, 3)      pixel (x, y, 1) of the band -> GridSample coordinates in the exemplar
    weight_theta  (1, 2, 3)      pixel (x, y, 1) of the band -> GridSample coordinates in the grids
    columns (bw,), rows (bh,)    the band's pixel coordinates
Output:
    colour        (bh, bw, C)    sum_m w_m v_m warp_m / sum_m w_m v_m, v_m = mask(A_m z) + eps

Opset 17 and GridSample-16 with hand-built grids (no AffineGrid, which needs opset 20): those
are the forms ONNX Runtime's CUDA provider has kernels for; a node without one falls back to the
CPU with a copy each way. The graph has no weights and does not depend on a checkpoint, so it
ships once, checked by the sha256 in engine/graphs/card.json like a model's graphs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.blend import OUTSIDE_REGION_WEIGHT
from engine.runtime.blend_graph import FILE, FOLDER
from engine.runtime.sessions import CARD, sha256

OPSET = 17
IR_VERSION = 8  # the IR of opset 17: fixed so that the file's bytes do not depend on the onnx version


def build():
    """The blend graph as an onnx ModelProto."""
    from onnx import TensorProto, helper

    nodes = []

    def node(op, inputs, output, **attributes):
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def constant(name, values, dtype=TensorProto.INT64):
        return node("Constant", [], name, value=helper.make_tensor(name, dtype, [len(values)], values))

    node("Reshape", ["columns", constant("column_shape", [1, 1, -1, 1])], "columns_4d")  # (1, 1, bw, 1)
    node("Reshape", ["rows", constant("row_shape", [1, -1, 1, 1])], "rows_4d")  # (1, bh, 1, 1)
    coefficient_shape = constant("coefficient_shape", [0, 1, 1, 2])

    def grid(theta):
        """theta (N, 2, 3) -> (N, bh, bw, 2): theta applied to (column, row, 1) of every pixel."""
        node("Transpose", [theta], f"{theta}_t", perm=[0, 2, 1])  # (N, 3, 2)
        terms = []
        for index, what in enumerate(("x", "y", "1")):
            node("Gather", [f"{theta}_t", constant(f"{theta}_{what}_index", [index])], f"{theta}_{what}_row", axis=1)
            terms.append(node("Reshape", [f"{theta}_{what}_row", coefficient_shape], f"{theta}_{what}"))  # (N, 1, 1, 2)
        node("Mul", ["columns_4d", terms[0]], f"{theta}_from_x")
        node("Mul", ["rows_4d", terms[1]], f"{theta}_from_y")
        node("Add", [f"{theta}_from_x", f"{theta}_from_y"], f"{theta}_xy")
        return node("Add", [f"{theta}_xy", terms[2]], f"{theta}_grid")

    # Every motion's grid stacked along the rows: one GridSample reads all M copies without
    # repeating the exemplar M times.
    node("Reshape", [grid("motion_theta"), constant("stacked_shape", [1, -1, 0, 2])], "stacked_grid")  # (1, M bh, bw, 2)
    node("GridSample", ["exemplar", "stacked_grid"], "copies", mode="bilinear", padding_mode="reflection", align_corners=0)
    node("GridSample", ["source_mask", "stacked_grid"], "inside", mode="bilinear", padding_mode="zeros", align_corners=0)
    node("GridSample", ["weights", grid("weight_theta")], "weight", mode="bilinear", padding_mode="border", align_corners=0)
    node("Shape", ["weight"], "weight_shape")  # [1, M, bh, bw]
    node("Reshape", ["inside", "weight_shape"], "inside_m")
    epsilon = node("Constant", [], "outside_weight", value=helper.make_tensor("outside_weight", TensorProto.FLOAT, [], [OUTSIDE_REGION_WEIGHT]))
    node("Add", ["inside_m", epsilon], "vote_scale")
    node("Mul", ["weight", "vote_scale"], "vote")  # (1, M, bh, bw)
    axis_1 = constant("axis_1", [1])
    node("ReduceSum", ["vote", axis_1], "total", keepdims=0)  # (1, bh, bw)
    node("Shape", ["exemplar"], "exemplar_shape")
    node("Slice", ["exemplar_shape", axis_1, constant("two", [2])], "channels")
    node("Slice", ["weight_shape", axis_1, constant("four", [4])], "motions_rows_columns")
    node("Concat", ["channels", "motions_rows_columns"], "copies_shape", axis=0)  # [C, M, bh, bw]
    node("Reshape", ["copies", "copies_shape"], "copies_m")
    node("Mul", ["copies_m", "vote"], "voted")
    node("ReduceSum", ["voted", axis_1], "summed", keepdims=0)  # (C, bh, bw)
    tiny = node("Constant", [], "tiny", value=helper.make_tensor("tiny", TensorProto.FLOAT, [], [1e-12]))
    node("Max", ["total", tiny], "divisor")
    node("Div", ["summed", "divisor"], "planes")
    node("Transpose", ["planes"], "colour", perm=[1, 2, 0])  # (bh, bw, C)

    def tensor(name, shape):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    graph = helper.make_graph(
        nodes,
        "simnet_full_resolution_blend",
        [
            tensor("exemplar", [1, "C", "H", "W"]),
            tensor("source_mask", [1, 1, "H", "W"]),
            tensor("weights", [1, "M", "h", "w"]),
            tensor("motion_theta", ["M", 2, 3]),
            tensor("weight_theta", [1, 2, 3]),
            tensor("columns", ["bw"]),
            tensor("rows", ["bh"]),
        ],
        [tensor("colour", ["bh", "bw", "C"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="simnet-manipulate")
    model.ir_version = IR_VERSION
    return model


def write(folder: Path = FOLDER) -> Path:
    """Write the graph and its card (sha256) into `folder`; returns the graph's path."""
    import onnx

    model = build()
    onnx.checker.check_model(model, full_check=True)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE
    path.write_bytes(model.SerializeToString())
    card = {"graphs": {"blend": FILE}, "opset": OPSET, "built_by": "python -m export.blend_graph", "sha256": {FILE: sha256(path)}}
    (folder / CARD).write_text(json.dumps(card, indent=1) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=FOLDER)
    print(write(parser.parse_args().out))


if __name__ == "__main__":
    main()
