"""Which full-resolution warp is fastest on this machine: OpenCV warpAffine (the engine's),
OpenCV remap on a materialised field, numpy bilinear gathering, or an ONNX graph (AffineGrid
and GridSample on ONNX Runtime's best provider here, layout changes included; skipped without
the onnx package). Then the engine's whole transport of one region, blended by OpenCV or by
its blend graph (engine/runtime/blend_graph.py) on that provider.

    python bench/warp.py [--sizes 1024 2048 4096] [--repeats 5]

Each method pulls an RGBA float32 image through the same affine motion; the figures are medians
after one warm-up, with each method's time as a ratio to warpAffine, and the largest difference
between the methods' outputs (they must agree). The transport table moves a region covering the
whole image with three motions (its weights vary across it), as blend.composite does.
"""

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

AFFINE = np.array([[0.97, 0.05, 12.3], [-0.04, 1.02, -7.9]])


def warp_affine(image, affine):
    h, w = image.shape[:2]
    return cv2.warpAffine(image, affine, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT_101)


def remap(image, affine):
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = (affine[0, 0] * xs + affine[0, 1] * ys + affine[0, 2]).astype(np.float32)
    map_y = (affine[1, 0] * xs + affine[1, 1] * ys + affine[1, 2]).astype(np.float32)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def numpy_bilinear(image, affine):
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    sx = affine[0, 0] * xs + affine[0, 1] * ys + affine[0, 2]
    sy = affine[1, 0] * xs + affine[1, 1] * ys + affine[1, 2]
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]

    def reflect(i, n):  # BORDER_REFLECT_101
        period = 2 * n - 2 if n > 1 else 1
        i = np.abs(i.astype(np.int64)) % period
        return np.where(i >= n, period - i, i)

    c0, c1 = reflect(x0, w), reflect(x0 + 1, w)
    r0, r1 = reflect(y0, h), reflect(y0 + 1, h)
    top = image[r0, c0] * (1 - fx) + image[r0, c1] * fx
    bottom = image[r1, c0] * (1 - fx) + image[r1, c1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def onnx_graph_warp():
    """A function warping like the others through a two-node ONNX graph, or None without onnx."""
    try:
        import onnx
        import onnxruntime
        from onnx import TensorProto, helper
    except ImportError:
        return None
    from engine.motion import pixel_to_normalised_affines
    from engine.runtime.sessions import choose_providers

    nodes = [
        helper.make_node("AffineGrid", ["theta", "size"], ["grid"], align_corners=0),
        helper.make_node("GridSample", ["image", "grid"], ["warped"], mode="linear", padding_mode="reflection", align_corners=0),
    ]
    graph = helper.make_graph(
        nodes, "warp",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, "c", "h", "w"]),
         helper.make_tensor_value_info("theta", TensorProto.FLOAT, [1, 2, 3]),
         helper.make_tensor_value_info("size", TensorProto.INT64, [4])],
        [helper.make_tensor_value_info("warped", TensorProto.FLOAT, [1, "c", "h", "w"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=choose_providers("auto", onnxruntime.get_available_providers())
    )

    def warp(image, affine):
        h, w, c = image.shape
        theta = pixel_to_normalised_affines(affine[None], h, w).astype(np.float32)
        planar = np.ascontiguousarray(image.transpose(2, 0, 1))[None]
        (warped,) = session.run(None, {"image": planar, "theta": theta, "size": np.array([1, c, h, w], np.int64)})
        return np.ascontiguousarray(warped[0].transpose(1, 2, 0))

    warp.provider = session.get_providers()[0].replace("ExecutionProvider", "")
    return warp


METHODS = {"cv2.warpAffine": warp_affine, "cv2.remap": remap, "numpy": numpy_bilinear}


def samples_inside(height, width, affine, margin=2):
    """(H, W) bool: where `affine` pulls from at least `margin` pixels inside the image."""
    ys, xs = np.mgrid[0:height, 0:width]
    sx = affine[0, 0] * xs + affine[0, 1] * ys + affine[0, 2]
    sy = affine[1, 0] * xs + affine[1, 1] * ys + affine[1, 2]
    return (sx >= margin) & (sx <= width - 1 - margin) & (sy >= margin) & (sy <= height - 1 - margin)


def median_seconds(function, image, repeats):
    function(image, AFFINE)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(image, AFFINE)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def transport_table(sizes, repeats):
    """Rows of the second table: blend.composite blending with OpenCV and with the graph."""
    from engine import blend, motion
    from engine.runtime import blend_graph
    from engine.runtime.sessions import choose_providers, onnxruntime

    graph = blend_graph.blend_graph(choose_providers("auto", onnxruntime().get_available_providers()))
    affines = np.array([[[1, 0, 0], [0, 1, 0]], AFFINE, [[0.98, 0.17, -20], [-0.17, 0.98, 90]]], np.float64)
    weights = np.random.default_rng(1).random((3, 128, 128)).astype(np.float32)
    weights /= weights.sum(axis=0)
    rows = []
    for size in sizes:
        image = np.random.default_rng(0).random((size, size, 4), dtype=np.float32)
        labels = np.zeros((size, size), np.int32)
        region = motion.RegionMotion(
            motion.pixel_to_normalised_affines(affines, size, size), weights, (0, 0, size, size), np.zeros((0, 2)), np.zeros((0, 2))
        )

        def on(blender):
            return lambda picture, _: blend.composite(picture, labels, labels, {0: region}, graph=blender).pixels

        opencv = median_seconds(on(None), image, repeats)
        seconds = median_seconds(on(graph), image, repeats)
        # where every motion samples inside the image (the graph reflects about the edge, OpenCV
        # about the edge pixel)
        inside = np.logical_and.reduce([samples_inside(size, size, a) for a in affines])
        difference = np.abs(on(graph)(image, None) - on(None)(image, None))[inside].max()
        provider = graph.provider.replace("ExecutionProvider", "")
        rows.append(f"| {size} | {opencv:.3f} | {seconds:.3f} ({provider}) | {seconds / opencv:.1f} | {difference:.4f} |")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads; RGBA float32, median of {args.repeats}")
    print("| size | method | seconds | x warpAffine | max diff |")
    print("|---|---|---|---|---|")
    methods = dict(METHODS)
    graph = onnx_graph_warp()
    if graph is not None:
        methods[f"ONNX graph ({graph.provider})"] = graph
    rng = np.random.default_rng(0)
    for size in args.sizes:
        image = rng.random((size, size, 4), dtype=np.float32)
        reference = warp_affine(image, AFFINE)
        inside = samples_inside(size, size, AFFINE)
        base = None
        for name, function in methods.items():
            if name == "numpy" and size > 2048:
                print(f"| {size} | {name} | skipped (over 3 GB of temporaries) | | |")
                continue
            seconds = median_seconds(function, image, args.repeats)
            base = base or seconds
            # where every method samples inside the image (their borders differ: ONNX reflects
            # about the edge, OpenCV about the edge pixel); OpenCV's 1/32-pixel fixed-point
            # weights differ slightly from float ones
            difference = np.abs(function(image, AFFINE) - reference)[inside].max()
            print(f"| {size} | {name} | {seconds:.4f} | {seconds / base:.1f} | {difference:.3f} |")
    if graph is not None:
        print("\nOne region's transport (three motions over the whole image), blended by OpenCV or by the blend graph:")
        print("| size | OpenCV s | graph s | x OpenCV | max diff |")
        print("|---|---|---|---|---|")
        print("\n".join(transport_table(args.sizes, args.repeats)))


if __name__ == "__main__":
    main()
