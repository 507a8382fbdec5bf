"""Hostile and unusual files: .ora bombs and damaged attributes, image headers past Pillow's own
limit, empty files, EXIF orientation and ICC profiles."""

import io
import struct
import tracemalloc
import warnings
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from engine.app.cli import main
from engine.errors import InputError
from engine.io import imageio
from engine.io.ora import Document, Layer, read_ora, write_ora

from .conftest import square_mask, textured

H, W = 40, 56


def _png_header(width: int, height: int, colour: int = 6) -> bytes:
    """A PNG signature and IHDR for an image of the given size (8-bit samples)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")))


def _png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _ora(path: Path, stack: str, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), b"image/openraster", compress_type=zipfile.ZIP_STORED)
        archive.writestr("stack.xml", stack)
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _stack(width=W, height=H, **attributes) -> str:
    extra = " ".join(f'{k}="{v}"' for k, v in attributes.items())
    return (f'<?xml version="1.0"?><image w="{width}" h="{height}"><stack>'
            f'<layer name="paint" src="data/a.png" {extra}/></stack></image>')


def _layer_png() -> bytes:
    return _png_bytes((np.dstack([textured(H, W), np.ones((H, W))]) * 255).astype(np.uint8))


@contextmanager
def _traced_peak():
    """The peak of Python-traced memory (numpy's arrays included) inside the block: peak[0]."""
    peak = [0]
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        yield peak
    finally:
        peak[0] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def _masks(folder: Path) -> list[str]:
    cv2.imwrite(str(folder / "src.png"), (square_mask(H, W, 5, 5, 12) * 255).astype(np.uint8))
    cv2.imwrite(str(folder / "tgt.png"), (square_mask(H, W, 30, 10, 12) * 255).astype(np.uint8))
    return ["--source-mask", str(folder / "src.png"), "--target-mask", str(folder / "tgt.png")]


def test_a_layer_that_inflates_far_past_its_size_is_refused_before_it_is_inflated(tmp_path, capsys):
    # a 16x16 layer whose PNG carries 64 MiB of zeros after its header (a few hundred KB zipped)
    bomb = _png_header(16, 16) + b"\x00" * (64 << 20)
    path = _ora(tmp_path / "bomb.ora", _stack(), {"data/a.png": bomb})
    assert path.stat().st_size < 1 << 20
    with _traced_peak() as peak, pytest.raises(InputError, match="would inflate to .* more than"):
        read_ora(path)
    assert peak[0] < 16 << 20
    assert main(["--quiet", "batch", str(path), "-o", str(tmp_path / "out.ora"), *_masks(tmp_path)]) == 2
    assert "bomb.ora:data/a.png" in capsys.readouterr().err


def test_a_layer_list_that_inflates_past_its_cap_is_refused(tmp_path):
    stack = _stack()[:-len("</stack></image>")] + "<!--" + "x" * (16 << 20) + "--></stack></image>"
    path = _ora(tmp_path / "stack.ora", stack, {"data/a.png": _layer_png()})
    with _traced_peak() as peak, pytest.raises(InputError, match="stack.xml would inflate"):
        read_ora(path)
    assert peak[0] < 16 << 20


def test_planning_many_large_flat_layers_decodes_none_of_them(tmp_path):
    flat = _png_bytes(np.full((2048, 2048, 4), 200, np.uint8))
    stack = ('<image w="2048" h="2048"><stack>'
             + "".join(f'<layer name="l{i}" src="data/l{i}.png"/>' for i in range(8)) + "</stack></image>")
    path = _ora(tmp_path / "flat.ora", stack, {f"data/l{i}.png": flat for i in range(8)})
    with _traced_peak() as peak:
        document = read_ora(path)
    assert len(document.layers) == 8 and peak[0] < 8 << 20  # one decoded layer would be 64 MB
    assert document.layers[3].pixels.shape == (2048, 2048, 4)  # decoded on demand


@pytest.mark.parametrize("attributes, message", [
    ({"opacity": "nan"}, "opacity='nan' is not a number"),
    ({"x": "nan"}, "x='nan' is not a whole number"),
    ({"x": "1e400"}, "x='1e400' is not a whole number"),
    ({"y": "2.5"}, "y='2.5' is not a whole number"),
])
def test_damaged_layer_attributes_are_clear_errors(tmp_path, capsys, attributes, message):
    path = _ora(tmp_path / "a.ora", _stack(**attributes), {"data/a.png": _layer_png()})
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        read_ora(path)
    assert main(["--quiet", "batch", str(path), "-o", str(tmp_path / "out.ora"), *_masks(tmp_path)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("width, message", [("1e3", "w='1e3'"), ("0", "w='0'"), ("-5", "w='-5'")])
def test_a_canvas_size_that_is_not_a_positive_whole_number_is_refused(tmp_path, width, message):
    path = _ora(tmp_path / "a.ora", _stack(width=width), {"data/a.png": _layer_png()})
    with pytest.raises(InputError, match=message):
        read_ora(path)


def test_layer_groups_nested_without_end_are_refused(tmp_path):
    stack = '<image w="8" h="8">' + "<stack>" * 200 + '<layer src="data/a.png"/>' + "</stack>" * 200 + "</image>"
    with pytest.raises(InputError, match="nested more than"):
        read_ora(_ora(tmp_path / "deep.ora", stack, {"data/a.png": _layer_png()}))


def test_opacity_just_outside_the_range_is_clamped_and_layers_copy_through_unchanged(tmp_path):
    png = _layer_png()
    path = _ora(tmp_path / "a.ora", _stack(opacity="1.0000001"), {"data/a.png": png})
    document = read_ora(path)
    assert document.layers[0].opacity == 1.0
    write_ora(tmp_path / "b.ora", document)
    with zipfile.ZipFile(tmp_path / "b.ora") as archive:
        assert archive.read("data/layer000.png") == png  # copied as it was, not decoded and encoded again


def test_headers_over_pillows_own_limit_are_reported_with_their_real_size(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(_png_header(70000, 70000))
    with pytest.raises(InputError, match=r"70000x70000 \(4900.0 MP\), over the limit of 67108864 pixels"):
        imageio.read_image(path)


def test_raising_the_limit_raises_it_past_pillows_and_warns_of_nothing(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(_png_header(15000, 13000, colour=0))  # 195 MP: Pillow alone refuses it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning would fail here
        header = imageio._read_header(path, 200_000_000)
        assert header is not None
        path.write_bytes(_png_header(10000, 10000, colour=0))  # 100 MP: Pillow alone warns
        assert imageio._read_header(path, 200_000_000) is not None
    with pytest.raises(InputError, match="over the limit of 1000 pixels"):
        imageio._read_header(path, 1000)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".webp"])
def test_empty_files_are_clear_errors(tmp_path, suffix):
    (tmp_path / f"empty{suffix}").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        imageio.read_image(tmp_path / f"empty{suffix}")


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".webp"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_honoured_for_every_format(tmp_path, suffix, orientation):
    pixels = np.zeros((24, 40, 3), np.uint8)
    pixels[:8, :8] = (250, 20, 20)  # a red corner, to see where it lands
    pixels[-8:, :16] = (20, 250, 20)
    exif = Image.Exif()
    exif[imageio.ORIENTATION_TAG] = orientation
    path = tmp_path / f"o{suffix}"
    options = {"quality": 95} if suffix == ".jpg" else {"lossless": True} if suffix == ".webp" else {}
    Image.fromarray(pixels).save(path, exif=exif.tobytes(), **options)
    with Image.open(path) as image:
        expected = np.asarray(ImageOps.exif_transpose(image).convert("RGB"), np.float32) / 255
    got = imageio.read_image(path).pixels
    assert got.shape == expected.shape
    assert np.abs(got - expected).mean() < 0.02


@pytest.mark.parametrize("suffix, depth", [(".png", 8), (".png", 16), (".jpg", 8), (".tif", 16), (".tif", 32), (".webp", 8)])
def test_icc_profiles_go_from_the_exemplar_into_the_result(tmp_path, suffix, depth):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # anything but sRGB
    exemplar = tmp_path / f"painting{suffix}"
    imageio.write_image(exemplar, textured(H, W), depth, profile)
    assert imageio.read_image(exemplar).icc_profile == profile
    out = tmp_path / f"result{suffix}"
    assert main(["--quiet", "manipulate", str(exemplar), "-o", str(out), "--model", "moments", *_masks(tmp_path)]) == 0
    result = imageio.read_image(out)
    assert result.icc_profile == profile and result.bit_depth == imageio.read_image(exemplar).bit_depth
    if suffix != ".tif" or depth != 32:  # Pillow reads every file here but float TIFF
        with Image.open(out) as image:
            assert image.info.get("icc_profile") == profile


def test_a_result_without_a_profile_gets_none(tmp_path):
    exemplar = tmp_path / "painting.png"
    imageio.write_image(exemplar, textured(H, W))
    out = tmp_path / "result.png"
    assert main(["--quiet", "manipulate", str(exemplar), "-o", str(out), "--model", "moments", *_masks(tmp_path)]) == 0
    assert imageio.read_image(out).icc_profile is None


def test_a_layer_decoded_from_memory_and_from_a_file_agree(tmp_path):
    pixels = np.dstack([textured(H, W), np.ones((H, W))]).astype(np.float32)
    write_ora(tmp_path / "a.ora", Document(W, H, [Layer("paint", pixels, x=3, y=-2)]))
    back = read_ora(tmp_path / "a.ora").layers[0]
    assert (back.x, back.y) == (3, -2)
    assert np.abs(back.placed(W, H) - Layer("paint", pixels, x=3, y=-2).placed(W, H)).max() <= 0.5 / 255 + 1e-6
