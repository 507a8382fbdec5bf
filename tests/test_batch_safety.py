"""`simnet batch` never writes over its inputs, keeps reports inside their folder, cleans up after
a kill and reports every finished job, planned as a whole before anything runs."""

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
from engine.io.files import TEMPORARY_INFIX, remove_stale_temporaries, temporary_target

from .conftest import REPO, square_mask, textured

H, W = 48, 64


def _image(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), (textured(H, W, seed=seed) * 255).astype(np.uint8))
    return path


def _masks(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "src.png"), (square_mask(H, W, 8, 10, 14) * 255).astype(np.uint8))
    cv2.imwrite(str(folder / "tgt.png"), (square_mask(H, W, 36, 14, 14) * 255).astype(np.uint8))
    return folder / "src.png", folder / "tgt.png"


def _jsonl(path: Path, jobs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(job) + "\n" for job in jobs))
    return path


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(capsys, argv, *fragments):
    assert main(argv) == 2
    message = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_a_job_whose_output_is_its_own_exemplar_is_refused_before_anything_is_written(tmp_path, capsys):
    _image(tmp_path / "b.png")
    _masks(tmp_path)
    jobs = _jsonl(tmp_path / "jobs.jsonl", [{"id": "one", "exemplar": "b.png", "output": "b.png", "model": "moments",
                                            "source_mask": "src.png", "target_mask": "tgt.png"}])
    before = _snapshot(tmp_path)
    _refused(capsys, ["--quiet", "batch", str(jobs)], "job 'one'", "b.png", "never written")
    assert _snapshot(tmp_path) == before  # no output, no report folder


@pytest.mark.parametrize("key", ["source_mask", "target_mask", "regions", "target"])
def test_an_output_equal_to_any_jobs_mask_or_map_is_refused(tmp_path, capsys, key):
    _image(tmp_path / "a.png")
    _image(tmp_path / "c.png", 1)
    _masks(tmp_path)
    cv2.imwrite(str(tmp_path / "regions.png"), np.zeros((H, W, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "target.png"), np.zeros((H, W, 3), np.uint8))
    edit = ({"source_mask": "src.png", "target_mask": "tgt.png"} if "mask" in key
            else {"regions": "regions.png", "target": "target.png"})
    victim = edit[key]
    jobs = _jsonl(tmp_path / "jobs.jsonl", [
        {"id": "first", "exemplar": "a.png", "output": "out/a.png", **edit},
        {"id": "second", "exemplar": "c.png", "output": victim, **edit},  # writes over the first job's input
    ])
    before = _snapshot(tmp_path)
    _refused(capsys, ["--quiet", "batch", str(jobs)], "job 'second'", victim, "an input of job 'first'")
    assert _snapshot(tmp_path) == before


def test_two_jobs_with_one_output_are_refused_naming_both(tmp_path, capsys):
    _image(tmp_path / "a.png")
    _image(tmp_path / "c.png", 1)
    _masks(tmp_path)
    edit = {"source_mask": "src.png", "target_mask": "tgt.png", "model": "moments"}
    jobs = _jsonl(tmp_path / "jobs.jsonl", [{"id": "a", "exemplar": "a.png", "output": "out/x.png", **edit},
                                            {"id": "c", "exemplar": "c.png", "output": "out/../out/x.png", **edit}])
    _refused(capsys, ["--quiet", "batch", str(jobs)], "job 'a'", "job 'c'", "both write")
    assert not (tmp_path / "out").exists()


def test_output_folder_on_the_masks_folder_is_refused_and_the_mask_survives(tmp_path, capsys):
    source, target = _masks(tmp_path / "masks")
    _image(tmp_path / "in" / "src.png")  # an input named like the mask: its output would be masks/src.png
    before = source.read_bytes()
    _refused(capsys, ["--quiet", "batch", str(tmp_path / "in"), "-o", str(tmp_path / "masks"), "--model", "moments",
                      "--source-mask", str(source), "--target-mask", str(target)], "src.png", "an input of job")
    assert source.read_bytes() == before


def test_inputs_that_share_a_name_are_refused_instead_of_one_overwriting_the_other(tmp_path, capsys):
    source, target = _masks(tmp_path)
    _image(tmp_path / "in" / "a.png")
    _image(tmp_path / "in" / "a.jpg", 1)
    _refused(capsys, ["--quiet", "batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "moments",
                      "--source-mask", str(source), "--target-mask", str(target)], "a.png", "a.jpg", "both write")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("link", ["hard", "symbolic"])
def test_an_output_that_is_a_link_to_an_input_is_refused(tmp_path, capsys, link):
    exemplar = _image(tmp_path / "a.png")
    _masks(tmp_path)
    (tmp_path / "out").mkdir()
    (os.link if link == "hard" else os.symlink)(exemplar, tmp_path / "out" / "result.png")
    before = exemplar.read_bytes()
    jobs = _jsonl(tmp_path / "jobs.jsonl", [{"id": "j", "exemplar": "a.png", "output": "out/result.png",
                                            "source_mask": "src.png", "target_mask": "tgt.png"}])
    _refused(capsys, ["--quiet", "batch", str(jobs)], "job 'j'", "result.png")
    assert exemplar.read_bytes() == before


def test_an_ora_output_that_is_a_hard_link_to_the_input_is_refused(tmp_path, capsys):
    from engine.io.ora import Document, Layer, write_ora

    source, target = _masks(tmp_path)
    layer = np.dstack([textured(H, W), np.ones((H, W))]).astype(np.float32)
    write_ora(tmp_path / "in.ora", Document(W, H, [Layer("paint", layer)]))
    os.link(tmp_path / "in.ora", tmp_path / "out.ora")
    before = (tmp_path / "in.ora").read_bytes()
    _refused(capsys, ["--quiet", "batch", str(tmp_path / "in.ora"), "-o", str(tmp_path / "out.ora"), "--model", "moments",
                      "--source-mask", str(source), "--target-mask", str(target)], "out.ora")
    assert (tmp_path / "in.ora").read_bytes() == before


def test_report_names_never_leave_the_report_folder_and_never_collide():
    ids = ["frame0", "/../../../outside/settings", "a/b", "a_b", "..", ".hidden", "x" * 300, "a b", "ü", "a~b"]
    names = [batch.report_name(job_id) for job_id in ids]
    assert names[0] == "frame0.json"  # plain ids keep their names
    assert len(set(names)) == len(names)
    for name in names:
        assert "/" not in name and not name.startswith(".") and len(name) < 120 and name.endswith(".json")


def test_a_hostile_job_id_writes_its_report_inside_the_report_folder(tmp_path):
    _image(tmp_path / "batch" / "a.png")
    _masks(tmp_path / "batch")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "settings.json").write_text("mine")
    edit = {"source_mask": "src.png", "target_mask": "tgt.png", "model": "moments"}
    jobs = _jsonl(tmp_path / "batch" / "jobs.jsonl", [{"id": "/../../../outside/settings", "exemplar": "a.png",
                                                       "output": "one.png", **edit},
                                                      {"id": "with/slash", "exemplar": "a.png", "output": "two.png", **edit}])
    assert main(["--quiet", "batch", str(jobs)]) == 0
    assert (outside / "settings.json").read_text() == "mine"
    reports = list((tmp_path / "batch" / "jobs.jsonl.report").iterdir())
    assert len(reports) == 2 and all(json.loads(p.read_text())["status"] == "done" for p in reports)


@pytest.mark.parametrize("line, message", [
    ({"id": 5, "exemplar": "a.png", "output": "o.png"}, "id must be text"),
    ({"id": ["x"], "exemplar": "a.png", "output": "o.png"}, "id must be text"),
    ({"exemplar": {"a": 1}, "output": "o.png"}, "exemplar must be text"),
    ({"exemplar": "a.png", "output": "o.png", "layer": "2"}, "layer must be a layer index"),
    ({"exemplar": "a.png", "output": ""}, "output is empty"),
])
def test_jsonl_fields_of_the_wrong_type_are_refused(tmp_path, capsys, line, message):
    _refused(capsys, ["--quiet", "batch", str(_jsonl(tmp_path / "jobs.jsonl", [line]))], message)


def test_resume_removes_our_own_temporaries_and_nothing_else(tmp_path):
    source, target = _masks(tmp_path)
    for i in range(2):
        _image(tmp_path / "in" / f"f{i}.png", i)
    out = tmp_path / "out"
    out.mkdir()
    ours = out / f".f0.png{TEMPORARY_INFIX}ab12CD_9.tmp"
    ours.write_bytes(b"half an image")
    report_leftover = tmp_path / "out.report" / f".f1.json{TEMPORARY_INFIX}zz99yy88.tmp"
    report_leftover.parent.mkdir()
    report_leftover.write_text("{")
    kept = [out / ".f0.png.tmp", out / f".unrelated.png{TEMPORARY_INFIX}ab12CD_9.tmp", out / "notes.txt",
            out / f".f0.png{TEMPORARY_INFIX}short.tmp"]
    for path in kept:
        path.write_text("not the batch's")
    assert main(["--quiet", "batch", str(tmp_path / "in"), "-o", str(out), "--model", "moments", "--resume",
                 "--source-mask", str(source), "--target-mask", str(target)]) == 0
    assert not ours.exists() and not report_leftover.exists()
    assert all(path.read_text() == "not the batch's" for path in kept)
    assert (out / "f0.png").exists() and (out / "f1.png").exists()


def test_temporary_names_say_which_output_they_were_for(tmp_path):
    assert temporary_target(f".a.png{TEMPORARY_INFIX}abcdEFG1.tmp") == "a.png"
    assert temporary_target(".a.png.abcdEFG1") is None and temporary_target("a.png") is None
    (tmp_path / f".b.tif{TEMPORARY_INFIX}abcdEFG1.tmp").mkdir()  # not a file: left alone
    assert remove_stale_temporaries([tmp_path / "b.tif"]) == []


def test_a_killed_parallel_batch_leaves_every_finished_output_reported_and_no_orphans(tmp_path):
    source, target = _masks(tmp_path)
    count = 40
    for i in range(count):
        _image(tmp_path / "in" / f"f{i:02d}.png", i)
    out, reports = tmp_path / "out", tmp_path / "out.report"
    command = [sys.executable, "-m", "engine", "--quiet", "batch", str(tmp_path / "in"), "-o", str(out), "--jobs", "2",
               "--model", "moments", "--source-mask", str(source), "--target-mask", str(target)]
    process = subprocess.Popen(command, cwd=REPO)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(reports.glob("*.json"))) < 6:
        time.sleep(0.005)
    children = _children(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(children) >= 2, "the pool had not started"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in children), "pool processes outlived the batch"
    finished = {p.stem for p in out.glob("*.png")}
    reported = {json.loads(p.read_text())["id"] for p in reports.glob("*.json")}
    # each of the two pool processes may have been killed between its output and its report
    assert len(finished - reported) <= 2 and len(finished) < count
    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, cwd=REPO)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"f{i:02d}.png" for i in range(count)]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
