"""`simnet batch`: OpenRaster round trips, folders, JSONL, failures, resume, parallel, Ray."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.app import batch
from engine.app.cli import main
from engine.errors import InputError
from engine.io.ora import Document, Layer, read_ora, write_ora

from .conftest import square_mask, textured

H, W = 80, 120


def _rgba(seed, h=H, w=W):
    return np.dstack([textured(h, w, seed=seed), np.ones((h, w))]).astype(np.float32)


def _masks(folder: Path):
    cv2.imwrite(str(folder / "src.png"), (square_mask(H, W, 20, 30, 25) * 255).astype(np.uint8))
    cv2.imwrite(str(folder / "tgt.png"), (square_mask(H, W, 70, 35, 25) * 255).astype(np.uint8))
    return ["--source-mask", str(folder / "src.png"), "--target-mask", str(folder / "tgt.png")]


def _document():
    return Document(W, H, [
        Layer("figure", _rgba(3, 40, 50), x=30, y=20, opacity=0.8),
        Layer("hidden", _rgba(4), visible=False),
        Layer("background", _rgba(5)),
    ])


def test_ora_round_trip_keeps_the_stack(tmp_path):
    write_ora(tmp_path / "a.ora", _document())
    back = read_ora(tmp_path / "a.ora")
    assert (back.width, back.height) == (W, H)
    assert [(l.name, l.x, l.y, l.opacity, l.visible) for l in back.layers] == [
        ("figure", 30, 20, 0.8, True), ("hidden", 0, 0, 1.0, False), ("background", 0, 0, 1.0, True)]
    assert np.abs(back.layers[0].pixels - _document().layers[0].pixels).max() <= 0.5 / 255 + 1e-6
    with open(tmp_path / "a.ora", "rb") as f:
        assert f.read(38)[30:38] == b"mimetype"  # first entry, stored: what readers sniff


def test_damaged_ora_files_are_refused(tmp_path):
    (tmp_path / "x.ora").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not an OpenRaster file"):
        read_ora(tmp_path / "x.ora")


def test_ora_batch_adds_results_above_sources_and_leaves_the_input(tmp_path):
    write_ora(tmp_path / "in.ora", _document())
    before = (tmp_path / "in.ora").read_bytes()
    code = main(["--quiet", "batch", str(tmp_path / "in.ora"), "-o", str(tmp_path / "out.ora"), "--model", "moments",
                 "--visible-only", *_masks(tmp_path)])
    assert code == 0 and (tmp_path / "in.ora").read_bytes() == before
    out = read_ora(tmp_path / "out.ora")
    assert [l.name for l in out.layers] == ["figure (manipulated)", "figure", "hidden", "background (manipulated)", "background"]
    made = out.layers[0]
    assert (made.x, made.y, made.pixels.shape, made.opacity) == (0, 0, (H, W, 4), 0.8)
    reports = sorted(p.name for p in (tmp_path / "out.ora.report").iterdir())
    assert reports == ["000_figure.json", "002_background.json"]
    assert json.loads((tmp_path / "out.ora.report" / "002_background.json").read_text())["status"] == "done"


def test_ora_batch_replace_and_layer_patterns(tmp_path):
    write_ora(tmp_path / "in.ora", _document())
    assert main(["--quiet", "batch", str(tmp_path / "in.ora"), "-o", str(tmp_path / "out.ora"), "--model", "moments",
                 "--layers", "back*", "--replace", *_masks(tmp_path)]) == 0
    assert [l.name for l in read_ora(tmp_path / "out.ora").layers] == ["figure", "hidden", "background (manipulated)"]


def _folder(tmp_path, count=3, corrupt=False):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(count):
        cv2.imwrite(str(folder / f"frame{i}.png"), (_rgba(i)[:, :, :3] * 255).astype(np.uint8))
    if corrupt:
        (folder / "frame9.png").write_bytes(b"\x89PNG\r\n\x1a\ngarbage")
    return folder


def test_quiet_silences_the_summary_and_without_it_the_summary_goes_to_stderr(tmp_path, capsys):
    folder = _folder(tmp_path, count=2)
    assert main(["--quiet", "batch", str(folder), "-o", str(tmp_path / "quiet"), "--model", "moments", *_masks(tmp_path)]) == 0
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    assert main(["batch", str(folder), "-o", str(tmp_path / "told"), "--model", "moments", *_masks(tmp_path)]) == 0
    told = capsys.readouterr()
    assert told.out == "" and "2 of 2 jobs done" in told.err


def test_a_corrupt_image_fails_alone(tmp_path, capsys):
    folder = _folder(tmp_path, corrupt=True)
    code = main(["--quiet", "batch", str(folder), "-o", str(tmp_path / "out"), "--model", "moments", *_masks(tmp_path)])
    assert code == 1 and "1 of 4 jobs failed (first: frame9" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["frame0.png", "frame1.png", "frame2.png"]
    failed = json.loads((tmp_path / "out.report" / "frame9.json").read_text())
    assert failed["status"] == "failed" and "frame9.png" in failed["error"]


def test_parallel_output_is_identical_to_serial(tmp_path):
    folder = _folder(tmp_path, count=4)
    masks = _masks(tmp_path)
    assert main(["--quiet", "batch", str(folder), "-o", str(tmp_path / "serial"), "--model", "moments", *masks]) == 0
    assert main(["--quiet", "batch", str(folder), "-o", str(tmp_path / "parallel"), "--model", "moments", "--jobs", "2", *masks]) == 0
    for i in range(4):
        assert (tmp_path / "serial" / f"frame{i}.png").read_bytes() == (tmp_path / "parallel" / f"frame{i}.png").read_bytes()


def test_resume_after_a_killed_run_skips_finished_jobs(tmp_path):
    folder = _folder(tmp_path, count=6)
    masks = _masks(tmp_path)
    command = [sys.executable, "-m", "engine", "--quiet", "batch", str(folder), "-o", str(tmp_path / "out"), "--model", "moments", *masks]
    process = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1])
    reports = tmp_path / "out.report"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(reports.glob("*.json"))) < 2:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = {p.name: p.read_bytes() for p in reports.glob("*.json")}
    assert len(before) >= 2
    result = subprocess.run(command + ["--resume"], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0
    for name, content in before.items():  # finished jobs were not run again (timings would differ)
        assert (reports / name).read_bytes() == content
    assert len(list(reports.glob("*.json"))) == 6
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"frame{i}.png" for i in range(6)]


def test_jsonl_jobs_with_their_own_edits(tmp_path):
    folder = _folder(tmp_path, count=2)
    _masks(tmp_path)
    lines = [
        {"id": "a", "exemplar": "frames/frame0.png", "output": "out/a.png", "source_mask": "src.png", "target_mask": "tgt.png", "model": "moments"},
        {"exemplar": "frames/frame1.png", "output": "out/b.png", "source_mask": "src.png", "target_mask": "missing.png"},
    ]
    (tmp_path / "jobs.jsonl").write_text("\n".join(json.dumps(l) for l in lines) + "\n")
    assert main(["--quiet", "batch", str(tmp_path / "jobs.jsonl")]) == 1
    assert (tmp_path / "out" / "a.png").exists() and not (tmp_path / "out" / "b.png").exists()
    assert json.loads((tmp_path / "jobs.jsonl.report" / "line00002.json").read_text())["status"] == "failed"
    (tmp_path / "bad.jsonl").write_text('{"exemplar": "x.png"}\n')
    with pytest.raises(InputError, match="needs exemplar and output"):
        batch.plan_jsonl(tmp_path / "bad.jsonl")


def test_input_errors(tmp_path, capsys):
    folder = _folder(tmp_path, count=1)
    assert main(["batch", str(folder), "-o", str(tmp_path / "out")]) == 2
    assert "no edit for 'frame0'" in capsys.readouterr().err
    assert main(["batch", str(folder), "-o", str(folder), *_masks(tmp_path)]) == 2
    assert main(["batch", str(tmp_path / "in.ora"), "-o", str(tmp_path / "o.png"), *_masks(tmp_path)]) == 2


def test_ray_cluster_runs_the_jobs(tmp_path):
    ray = pytest.importorskip("ray")
    folder = _folder(tmp_path, count=2)
    masks = _masks(tmp_path)
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    port = "6391"
    started = subprocess.run(["ray", "start", "--head", "--port", port, "--num-cpus", "2", "--include-dashboard=false"],
                             capture_output=True, text=True, env=env, timeout=120)
    if started.returncode != 0:
        pytest.skip(f"a local Ray head did not start: {started.stderr[-300:]}")
    try:
        code = subprocess.run([sys.executable, "-m", "engine", "--quiet", "batch", str(folder), "-o", str(tmp_path / "ray"),
                               "--model", "moments", "--ray", f"127.0.0.1:{port}", *masks],
                              capture_output=True, text=True, env=env, timeout=300, cwd=Path(__file__).resolve().parents[1])
        assert code.returncode == 0, code.stderr[-2000:]
        assert main(["--quiet", "batch", str(folder), "-o", str(tmp_path / "local"), "--model", "moments", *masks]) == 0
        for i in range(2):
            assert (tmp_path / "ray" / f"frame{i}.png").read_bytes() == (tmp_path / "local" / f"frame{i}.png").read_bytes()
    finally:
        subprocess.run(["ray", "stop", "--force"], capture_output=True, env=env, timeout=120)


def _layered_figure():
    """Line art, flat colours and a paper background: a figure drawn across two layers."""
    lines = np.zeros((H, W, 4), np.float32)
    lines[30, 20:45] = (0.0, 0.0, 0.0, 1.0)  # the figure's top edge, one pixel thick
    lines[30:55, 20] = (0.0, 0.0, 0.0, 1.0)
    colours = np.zeros((H, W, 4), np.float32)
    colours[31:55, 21:45] = (0.9, 0.4, 0.1, 1.0)
    return Document(W, H, [
        Layer("line art", lines),
        Layer("colours", colours, opacity=0.9),
        Layer("paper", _rgba(5)),
    ])


@pytest.mark.parametrize("solve_on", [None, "colours"])
def test_together_moves_every_layer_alike_and_mirrors_the_stack(tmp_path, solve_on):
    write_ora(tmp_path / "in.ora", _layered_figure())
    before = (tmp_path / "in.ora").read_bytes()
    args = ["--quiet", "batch", str(tmp_path / "in.ora"), "-o", str(tmp_path / "out.ora"), "--model", "moments",
            "--together", *_masks(tmp_path)] + (["--solve-on", solve_on] if solve_on else [])
    assert main(args) == 0 and (tmp_path / "in.ora").read_bytes() == before
    out = read_ora(tmp_path / "out.ora")
    assert [(l.name, l.opacity) for l in out.layers] == [("line art", 1.0), ("colours", 0.9), ("paper", 1.0)]
    lines, colours = out.layers[0].pixels, out.layers[1].pixels
    # the masks move the part at (20, 30) by (50, 5): both layers moved by exactly that
    assert (lines[35, 70:95, 3] > 0.99).all() and (lines[35:55, 70, 3] > 0.99).all()
    assert np.allclose(colours[36:55, 71:95], (0.9, 0.4, 0.1, 1.0), atol=1 / 255)
    assert (lines[:, :, 3] > 0.5).sum() == (_layered_figure().layers[0].pixels[20:55, 20:45, 3] > 0.5).sum()
    # what the part left is as the layers were around it: transparent in the line art and the colours
    assert lines[31:55, 21:45, 3].max() < 1 / 255 and colours[31:55, 21:45, 3].max() < 1 / 255


def test_a_saved_edit_goes_over_a_folder_of_variants_at_several_sizes(tmp_path):
    exemplar = tmp_path / "painting.png"
    cv2.imwrite(str(exemplar), (textured(H, W) * 255).astype(np.uint8))
    assert main(["--quiet", "manipulate", str(exemplar), *_masks(tmp_path), "-o", str(tmp_path / "result.png"),
                 "--model", "moments", "--save-edit", str(tmp_path / "edit.npz")]) == 0
    variants = tmp_path / "variants"
    variants.mkdir()
    for scale in (1, 2):
        image = cv2.resize((textured(H, W, seed=7) * 255).astype(np.uint8), (W * scale, H * scale), interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(variants / f"x{scale}.png"), image)
    assert main(["--quiet", "batch", str(variants), "-o", str(tmp_path / "out"), "--apply-edit", str(tmp_path / "edit.npz")]) == 0
    small, large = (cv2.imread(str(tmp_path / "out" / f"x{s}.png")) for s in (1, 2))
    source = cv2.imread(str(variants / "x1.png"))
    assert np.array_equal(small[38:58, 73:93], source[33:53, 23:43])  # moved by (50, 5), as the painting was
    assert large.shape == (2 * H, 2 * W, 3)
    assert np.array_equal(large[76:116, 146:186], cv2.imread(str(variants / "x2.png"))[66:106, 46:86])


def test_together_and_apply_edit_refuse_what_does_not_go_with_them(tmp_path, capsys):
    write_ora(tmp_path / "in.ora", _layered_figure())
    masks = _masks(tmp_path)
    cases = [
        (["--together", *masks], tmp_path / "folder_in", "--together applies to an .ora"),
        (["--solve-on", "colours", *masks], tmp_path / "in.ora", "--solve-on goes with --together"),
        (["--together", "--solve-on", "ink", *masks], tmp_path / "in.ora", "no layer named 'ink'"),
        (["--apply-edit", str(tmp_path / "e.npz"), *masks], tmp_path / "in.ora", "--apply-edit replays a saved edit"),
    ]
    (tmp_path / "folder_in").mkdir()
    for extra, source, message in cases:
        assert main(["batch", str(source), "-o", str(tmp_path / "out.ora"), "--model", "moments", *extra]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "out.ora").exists()
