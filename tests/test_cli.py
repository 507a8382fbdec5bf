import subprocess
import sys

import numpy as np
import pytest

from engine import samples
from engine.app.cli import main
from engine.io import imageio

from .conftest import square_mask, textured


def _files(tmp_path, height=90, width=120, depth=8, suffix=".png"):
    exemplar = textured(height, width)
    imageio.write_image(tmp_path / f"exemplar{suffix}", exemplar, depth)
    source = square_mask(height, width, 10, 20, 25).astype(np.float32)
    target = square_mask(height, width, 70, 30, 30).astype(np.float32)
    imageio.write_image(tmp_path / "source.png", source)
    imageio.write_image(tmp_path / "target.png", target)
    return exemplar


def _masks_args(tmp_path, output="out.png", exemplar="exemplar.png"):
    return [
        "--quiet", "manipulate", str(tmp_path / exemplar),
        "--source-mask", str(tmp_path / "source.png"),
        "--target-mask", str(tmp_path / "target.png"),
        "-o", str(tmp_path / output),
    ]


def test_demo_writes_full_size_result_and_explain_sheet(tmp_path):
    assert main(["--quiet", "demo", "-o", str(tmp_path)]) == 0
    result = imageio.read_image(tmp_path / "water_lilies.result.png").pixels
    exemplar = imageio.read_image(samples.DEMO.exemplar).pixels
    assert result.shape == exemplar.shape and max(result.shape) >= 1600
    changed = np.any(result != exemplar, axis=2)
    assert 0.002 < changed.mean() < 0.05  # the lily's two places, not the whole pond
    sheet = imageio.read_image(tmp_path / "water_lilies.explain.png").pixels
    assert sheet.shape[1] >= 2 * 1024 and sheet.shape[2] == 3  # panels at their largest (explain.MAX_PANEL)


def test_manipulate_with_masks_and_explain(tmp_path, capsys):
    _files(tmp_path)
    args = _masks_args(tmp_path) + ["--explain", str(tmp_path / "sheet.png")]
    assert main(args) == 0
    assert imageio.read_image(tmp_path / "out.png").pixels.shape == (90, 120, 3)
    assert (tmp_path / "sheet.png").is_file()
    assert capsys.readouterr().err == ""  # --quiet


def test_sixteen_bit_and_float_inputs_keep_their_depth(tmp_path):
    _files(tmp_path, depth=16)
    assert main(_masks_args(tmp_path)) == 0
    assert imageio.read_image(tmp_path / "out.png").bit_depth == 16
    _files(tmp_path, depth=32, suffix=".tif")
    assert main(_masks_args(tmp_path, "out.tif", "exemplar.tif")) == 0
    assert imageio.read_image(tmp_path / "out.tif").bit_depth == 32


def test_region_maps(tmp_path):
    _files(tmp_path)
    palette = np.array([[255, 255, 255], [255, 0, 0]], np.uint8)
    exemplar_map = palette[square_mask(90, 120, 10, 20, 25).astype(int)]
    target_map = palette[square_mask(90, 120, 60, 30, 35).astype(int)]
    imageio.write_image(tmp_path / "a.png", exemplar_map / 255.0)
    imageio.write_image(tmp_path / "b.png", target_map / 255.0)
    args = ["--quiet", "manipulate", str(tmp_path / "exemplar.png"), "--regions", str(tmp_path / "a.png"),
            "--target", str(tmp_path / "b.png"), "-o", str(tmp_path / "out.webp")]
    assert main(args) == 0
    assert imageio.read_image(tmp_path / "out.webp").pixels.shape == (90, 120, 3)


def _expect_input_error(tmp_path, capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "out.png").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_bad_inputs_exit_2_with_one_line_and_no_output(tmp_path, capsys):
    _files(tmp_path)
    def case(message, replace=None, extra=(), args=None):
        args = list(args or _masks_args(tmp_path)) + list(extra)
        if replace:
            args[args.index(replace[0])] = replace[1]
        _expect_input_error(tmp_path, capsys, args, message)

    case("no such file", (str(tmp_path / "exemplar.png"), str(tmp_path / "absent.png")))
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    case("cannot decode", (str(tmp_path / "exemplar.png"), str(tmp_path / "corrupt.png")))
    imageio.write_image(tmp_path / "empty.png", np.zeros((90, 120)))
    case("target mask is empty", (str(tmp_path / "target.png"), str(tmp_path / "empty.png")))
    imageio.write_image(tmp_path / "all.png", np.ones((90, 120)))
    case("source mask covers the whole image", (str(tmp_path / "source.png"), str(tmp_path / "all.png")))
    case("target mask covers the whole image", (str(tmp_path / "target.png"), str(tmp_path / "all.png")))
    imageio.write_image(tmp_path / "narrow.png", np.ones((90, 60)))
    case("target mask is 60x90 but the exemplar is 120x90, a different shape",
         (str(tmp_path / "target.png"), str(tmp_path / "narrow.png")))
    case("over the limit", extra=["--max-pixels", "5000"])
    case("give either --regions and --target", extra=["--regions", str(tmp_path / "source.png")])
    case("unknown model", extra=["--model", "nope"])
    case("is not a model folder: no card.json", extra=["--model", str(tmp_path)])
    case("over the limit of 5000 pixels", extra=["--max-pixels", "5000"])
    case("folder", ("-o", "-o"), args=_masks_args(tmp_path, "missing/out.png"))


def test_maps_without_shared_regions_or_of_other_sizes(tmp_path, capsys):
    _files(tmp_path)
    red = np.zeros((90, 120, 3)); red[..., 0] = 1
    blue = np.zeros((90, 120, 3)); blue[..., 2] = 1
    imageio.write_image(tmp_path / "red.png", red)
    imageio.write_image(tmp_path / "blue.png", blue)
    imageio.write_image(tmp_path / "red_small.png", red[:40, :50])
    base = ["manipulate", str(tmp_path / "exemplar.png"), "-o", str(tmp_path / "out.png")]
    _expect_input_error(tmp_path, capsys, base + ["--regions", str(tmp_path / "red.png"), "--target", str(tmp_path / "blue.png")], "#0000ff, which the exemplar map does not have")
    _expect_input_error(tmp_path, capsys, base + ["--regions", str(tmp_path / "red.png"), "--target", str(tmp_path / "red_small.png")], "exemplar map is 120x90 but the target map is 50x40")
    _expect_input_error(tmp_path, capsys, base + ["--regions", str(tmp_path / "red_small.png"), "--target", str(tmp_path / "red_small.png")], "50x40 but the exemplar is 120x90, a different shape")


def test_segment_writes_a_repaintable_map(tmp_path):
    _files(tmp_path)
    assert main(["--quiet", "segment", str(tmp_path / "exemplar.png"), "-o", str(tmp_path / "map.png"), "--max-regions", "3"]) == 0
    colours = imageio.to_rgb8(imageio.read_image(tmp_path / "map.png").pixels).reshape(-1, 3)
    assert 1 <= len(np.unique(colours, axis=0)) <= 3
    assert main(["segment", str(tmp_path / "exemplar.png"), "-o", str(tmp_path / "map.jpg")]) == 2


def test_console_script_and_no_torch_on_the_inference_path(tmp_path):
    code = (
        "import sys, engine, engine.app.cli, engine.app.explain; "
        "assert engine.app.cli.main(['--quiet', 'demo', '-o', sys.argv[1]]) == 0; "
        "assert 'torch' not in sys.modules, 'inference imported torch'"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    completed = subprocess.run(["simnet", "--help"], capture_output=True, text=True)
    assert completed.returncode == 0 and "manipulate" in completed.stdout


def test_internal_errors_exit_1_and_debug_shows_traceback(tmp_path, capsys, monkeypatch):
    _files(tmp_path)
    from engine import pipeline

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(pipeline, "compose", broken)
    assert main(_masks_args(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError: boom" in err and "Traceback" not in err
    assert main(["--debug"] + _masks_args(tmp_path)) == 1
    assert "Traceback" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_progress_goes_to_stderr_for_longer_jobs(tmp_path, capsys, monkeypatch):
    _files(tmp_path)
    from engine.app import cli

    monkeypatch.setattr(cli, "PROGRESS_AFTER", 0.0)  # as if the job had run for over a second
    args = [a for a in _masks_args(tmp_path) if a != "--quiet"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "motion:" in captured.err and "transport: 100%" in captured.err
    assert captured.out == ""
    assert main(["--quiet"] + args) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("depth", [8, 16])
def test_provenance_file_and_pixels_outside_the_edit_are_the_files_own(tmp_path, depth):
    _files(tmp_path, depth=depth)
    provenance = tmp_path / "where.npz"
    assert main(_masks_args(tmp_path) + ["--model", "moments", "--provenance", str(provenance)]) == 0
    saved = np.load(provenance)
    assert set(saved.files) == {"source_x", "source_y", "source_region", "kind"}
    assert saved["kind"].shape == (90, 120) and set(np.unique(saved["kind"])) <= {0, 1, 2}
    assert (saved["kind"][35:55, 75:95] == 1).all()  # the moved square's inside is warped
    # an unchanged pixel is the input file's own sample, bit for bit, at its depth
    unchanged = saved["kind"] == 0
    scale = 255 if depth == 8 else 65535
    original = np.rint(imageio.read_image(tmp_path / "exemplar.png").pixels * scale)
    written = np.rint(imageio.read_image(tmp_path / "out.png").pixels * scale)
    assert unchanged.mean() > 0.5 and np.array_equal(written[unchanged], original[unchanged])


def test_provenance_must_be_npz(tmp_path, capsys):
    _files(tmp_path)
    assert main(_masks_args(tmp_path) + ["--provenance", str(tmp_path / "where.png")]) == 2
    assert "npz" in capsys.readouterr().err


def test_a_mask_at_half_scale_is_resized_like_a_map(tmp_path):
    _files(tmp_path)
    half = imageio.read_image(tmp_path / "target.png").pixels[::2, ::2, 0]
    imageio.write_image(tmp_path / "target_half.png", half)
    assert main(_masks_args(tmp_path)) == 0
    full = imageio.read_image(tmp_path / "out.png").pixels
    args = _masks_args(tmp_path, "out_half.png")
    args[args.index(str(tmp_path / "target.png"))] = str(tmp_path / "target_half.png")
    assert main(args) == 0
    scaled = imageio.read_image(tmp_path / "out_half.png").pixels
    assert scaled.shape == full.shape
    assert np.abs(scaled - full).mean() < 0.02  # the same edit, its edges a pixel apart at most


def test_the_output_is_checked_before_any_work(tmp_path, capsys, monkeypatch):
    from engine.app import cli

    _files(tmp_path)
    rgba = np.concatenate([textured(90, 120), np.full((90, 120, 1), 0.5, np.float32)], axis=2)
    imageio.write_image(tmp_path / "rgba.png", rgba)
    ran = []
    monkeypatch.setattr(cli, "run", lambda *a, **k: ran.append(1))
    cases = [
        (_masks_args(tmp_path, "out.jpg", "rgba.png"), "JPEG cannot store transparency"),
        (_masks_args(tmp_path, "exemplar.png"), "is one of the inputs"),
        (_masks_args(tmp_path, "out.bmp"), "cannot write '.bmp' files"),
        (_masks_args(tmp_path, ""), "is a folder"),
    ]
    for args, message in cases:
        assert main(args) == 2
        assert message in capsys.readouterr().err
    assert not ran  # refused before the manipulation started
    assert imageio.read_image(tmp_path / "exemplar.png").pixels.shape == (90, 120, 3)  # the input kept


def test_quiet_and_debug_are_accepted_after_the_command(tmp_path, capsys):
    _files(tmp_path)
    args = _masks_args(tmp_path)[1:] + ["--quiet", "--debug"]
    assert main(args) == 0
    assert capsys.readouterr().err == ""


def test_manipulate_help_is_written_for_artists(capsys):
    with pytest.raises(SystemExit):
        main(["manipulate", "--help"])
    text = capsys.readouterr().out
    assert "the painting" in text and "--source-mask part.png --target-mask there.png" in text
    assert "--regions painting.regions.png --target layout.png" in text
    assert "(default 128)" in text and "simnet-small (learned SIM-Net (simnet-small))" not in text


def test_a_saved_edit_replays_the_same_move_on_another_layer(tmp_path):
    _files(tmp_path)
    imageio.write_image(tmp_path / "target.png", square_mask(90, 120, 70, 30, 25).astype(np.float32))  # a move
    assert main(_masks_args(tmp_path) + ["--save-edit", str(tmp_path / "edit.npz"), "--model", "moments"]) == 0
    line_art = np.zeros((90, 120, 4), np.float32)
    line_art[30, 14:30] = (0.0, 0.0, 0.0, 1.0)  # an ink line inside the moved part
    imageio.write_image(tmp_path / "lines.png", line_art)
    args = ["--quiet", "manipulate", str(tmp_path / "lines.png"), "--apply-edit", str(tmp_path / "edit.npz"),
            "-o", str(tmp_path / "lines.moved.png")]
    assert main(args) == 0
    moved = imageio.read_image(tmp_path / "lines.moved.png").pixels
    assert moved.shape == (90, 120, 4)
    ink = np.argwhere(moved[:, :, 3] > 0.5)
    assert len(ink) == 16 and (ink[:, 0] == 40).all()  # one crisp line of the same length...
    assert ink[:, 1].min() == 74  # ...moved as the part was (60 right, 10 down), none left behind
    assert (moved[40, 74:90] == (0.0, 0.0, 0.0, 1.0)).all()
    # the same edit at twice the size: the composition resampled
    imageio.write_image(tmp_path / "big.png", np.kron(textured(90, 120), np.ones((2, 2, 1), np.float32)))
    big = ["--quiet", "manipulate", str(tmp_path / "big.png"), "--apply-edit", str(tmp_path / "edit.npz"),
           "-o", str(tmp_path / "big.out.png")]
    assert main(big) == 0
    assert imageio.read_image(tmp_path / "big.out.png").pixels.shape == (180, 240, 3)


def test_apply_edit_refuses_maps_and_files_that_are_not_edits(tmp_path, capsys):
    _files(tmp_path)
    _expect_input_error(tmp_path, capsys, _masks_args(tmp_path) + ["--apply-edit", str(tmp_path / "source.png")],
                        "--apply-edit replays a saved edit")
    args = ["manipulate", str(tmp_path / "exemplar.png"), "--apply-edit", str(tmp_path / "source.png"), "-o",
            str(tmp_path / "out.png")]
    _expect_input_error(tmp_path, capsys, args, "source.png is not a solved edit")
    _expect_input_error(tmp_path, capsys, _masks_args(tmp_path) + ["--save-edit", str(tmp_path / "edit.txt")],
                        "the solved edit is written as .npz")
