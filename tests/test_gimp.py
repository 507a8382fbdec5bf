"""The GIMP plug-in in real GIMP 3 (Debian trixie's 3.0, in a chroot built by .ci/gimp-chroot).

GIMP runs in the chroot with its own Python; the plug-in starts the engine worker exactly as on
an artist's machine, from the command recorded in engine.json. Here that command is this test
environment's interpreter run through `chroot /host` (the host's root, bind-mounted read-only
into the chroot), because the worker's Python and packages live outside the chroot.
Skipped when the chroot is absent (SIMNET_GIMP_CHROOT, default /var/cache/simnet/gimp-trixie)
or when not run as root (mounting needs it).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import manipulate_masks
from engine.app.install import install_gimp

from .conftest import registry_reachable, virtual_screen

CHROOT = Path(os.environ.get("SIMNET_GIMP_CHROOT", "/var/cache/simnet/gimp-trixie"))
HERE = Path(__file__).resolve().parent
W, H = 96, 64

pytestmark = pytest.mark.skipif(
    not (CHROOT / "usr" / "bin" / "gimp-console-3.0").exists() or os.geteuid() != 0,
    reason="no GIMP 3 chroot (build it with .ci/gimp-chroot) or not root",
)


@pytest.fixture(scope="module")
def gimp():
    host = CHROOT / "host"
    host.mkdir(exist_ok=True)
    mounted = subprocess.run(["mount", "--rbind", "/", str(host)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount the host into the chroot: {mounted.stderr}")
    # slave: unmounting below must never propagate back to the host's own mounts
    subprocess.run(["mount", "--make-rslave", str(host)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(host)], check=False)
    profile = CHROOT / "tmp" / "simnet-gimp-profile"
    shutil.rmtree(profile, ignore_errors=True)
    install_gimp(profile, command=["chroot", "/host", sys.executable, "-m", "engine", "worker"])
    try:
        yield profile
    finally:
        subprocess.run(["umount", "-R", str(host)], check=False)


def run_cases(profile: Path, which: str, tmp_path: Path, extra_env: dict | None = None) -> dict:
    out = CHROOT / "tmp" / f"simnet-gimp-out-{which}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp", "GIMP3_DIRECTORY": "/" + str(profile.relative_to(CHROOT)),
           "SIMNET_GIMP_OUT": "/" + str(out.relative_to(CHROOT)), "SIMNET_GIMP_CASES": which, "LANG": "C.UTF-8",
           **(extra_env or {})}
    script = (HERE / "gimp" / "gimp_cases.py").read_text()
    result = subprocess.run(
        ["chroot", str(CHROOT), "gimp-console-3.0", "-idf", "--batch-interpreter=python-fu-eval", "-b", "-", "--quit"],
        input=script, capture_output=True, text=True, env=env, timeout=900,
    )
    (tmp_path / f"gimp-{which}.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    log = json.loads((out / f"log-{which}.json").read_text())
    log["_folder"] = out
    return log


@pytest.fixture(scope="module")
def cases(gimp, tmp_path_factory):
    return run_cases(gimp, "all", tmp_path_factory.mktemp("gimp"))


def _raw(folder: Path, name: str, channels: int, dtype=np.float32):
    return np.fromfile(folder / name, dtype).reshape(H, W, channels) if channels > 1 else np.fromfile(folder / name, np.uint8).reshape(H, W)


@pytest.mark.parametrize("name, step", [("u8", 1 / 255), ("u16", 1 / 65535), ("float", 0.0), ("u8_no_alpha", 1 / 255), ("u8_feathered", 1 / 255)])
def test_result_layer_matches_the_engine(cases, name, step):
    entry = cases[name]
    assert entry["status"] == "success", entry
    assert entry["layers"] == ["Manipulated Exemplar", "Exemplar", "Background"]
    assert entry["offsets"] == [0, 0] and entry["size"] == [W, H]  # full canvas, whatever the layer's size
    assert entry["unchanged"]
    folder = cases["_folder"]
    exemplar = _raw(folder, f"{name}.exemplar.raw", 4)
    source = _raw(folder, f"{name}.source.raw", 1) / 255.0
    target = _raw(folder, f"{name}.target.raw", 1) / 255.0
    got = _raw(folder, f"{name}.result.raw", 4)
    if step:  # the plug-in sends the image's own integer samples
        exemplar = np.round(exemplar / step) * step
    expected = manipulate_masks(exemplar.astype(np.float32), source, target)
    if step:
        expected = np.round(np.clip(expected, 0, 1) / step) * step
    assert np.abs(got - expected).max() <= max(step, 1e-5) + 1e-6


def test_feathered_selection_stays_soft(cases):
    target = _raw(cases["_folder"], "u8_feathered.target.raw", 1)
    assert ((target > 0) & (target < 255)).sum() > 50  # the selection read had soft edges


def test_errors_are_gimp_errors_with_a_message_and_change_nothing(cases):
    assert cases["no_target"]["status"] == "execution-error"
    assert "current selection is empty" in cases["no_target"]["message"]
    assert cases["no_target"]["layers"] == ["Exemplar", "Background"]
    assert "save a selection of it as a channel" in cases["no_channel"]["message"]
    assert "whole image is selected" in cases["all_selected"]["message"]
    assert "Indexed images are not supported" in cases["indexed"]["message"]


def test_segment_adds_a_region_map_layer(cases):
    assert cases["segment"]["status"] == "success"
    assert cases["segment"]["layers"][:2] == ["Regions of Exemplar", "Exemplar"]


def test_region_map_mode(cases):
    assert cases["maps"]["status"] == "success", cases["maps"]
    assert cases["maps"]["layers"] == ["Edited regions", "Regions of Exemplar", "Manipulated Exemplar", "Exemplar", "Background"]


def test_an_ora_saved_by_gimp_goes_through_batch(cases, tmp_path):
    from engine.app.cli import main
    from engine.io.ora import read_ora

    saved = cases["_folder"] / "saved_by_gimp.ora"
    assert cases["ora"]["exists"]
    document = read_ora(saved)
    names = [l.name for l in document.layers]
    assert names == ["Exemplar", "Background"]
    exemplar = document.layers[0]
    assert (exemplar.x, exemplar.y, exemplar.pixels.shape[:2]) == (8, 4, (56, 80))
    assert exemplar.opacity == pytest.approx(0.8, abs=0.01)
    masks = tmp_path / "src.png", tmp_path / "tgt.png"
    import cv2

    for path, (x, y) in zip(masks, ((16, 12), (50, 24))):
        mask = np.zeros((H, W), np.uint8)
        mask[y : y + 20, x : x + 24] = 255
        cv2.imwrite(str(path), mask)
    assert main(["--quiet", "batch", str(saved), "-o", str(tmp_path / "out.ora"), "--layers", "Exemplar",
                 "--source-mask", str(masks[0]), "--target-mask", str(masks[1])]) == 0
    assert [l.name for l in read_ora(tmp_path / "out.ora").layers] == ["Exemplar (manipulated)", "Exemplar", "Background"]
    # one edit for every layer: the stack mirrored, both layers moved alike
    assert main(["--quiet", "batch", str(saved), "-o", str(tmp_path / "together.ora"), "--together", "--model", "moments",
                 "--source-mask", str(masks[0]), "--target-mask", str(masks[1])]) == 0
    together = read_ora(tmp_path / "together.ora")
    assert [l.name for l in together.layers] == ["Exemplar", "Background"]
    assert together.layers[0].opacity == pytest.approx(0.8, abs=0.01)
    moved = together.layers[1].pixels
    original = document.layers[1].placed(W, H)
    assert np.abs(moved[26:42, 54:70] - original[14:30, 20:36]).max() <= 1 / 255 + 1e-6  # moved by (34, 12)


def test_missing_engine_is_reported(gimp, tmp_path):
    settings = gimp / "plug-ins" / "simnet_manipulate" / "engine.json"
    original = settings.read_text()
    settings.write_text(json.dumps({"command": ["/nonexistent/python", "-m", "engine", "worker"]}))
    try:
        log = run_cases(gimp, "engine-missing", tmp_path)
    finally:
        settings.write_text(original)
    assert log["engine_missing"]["status"] == "execution-error"
    assert log["engine_missing"]["message"] and log["engine_missing"]["layers"] == ["Exemplar", "Background"]


DIALOG_SCRIPT = """
import gi
gi.require_version("Gimp", "3.0")
from gi.repository import Gimp
image = Gimp.Image.new(320, 200, Gimp.ImageBaseType.RGB)
layer = Gimp.Layer.new(image, "Exemplar", 320, 200, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
image.insert_layer(layer, None, 0)
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl
def colour(r, g, b):
    c = Gegl.Color.new("black")
    c.set_rgba(r, g, b, 1.0)
    return c
Gimp.context_set_foreground(colour(0.25, 0.45, 0.7))
layer.fill(Gimp.FillType.FOREGROUND)
Gimp.Display.new(image)
image.select_rectangle(Gimp.ChannelOps.REPLACE, 20, 20, 60, 40)
Gimp.context_set_foreground(colour(0.95, 0.6, 0.1))
layer.edit_fill(Gimp.FillType.FOREGROUND)
channel = Gimp.Selection.save(image)
image.select_rectangle(Gimp.ChannelOps.REPLACE, 200, 100, 60, 40)
procedure = Gimp.get_pdb().lookup_procedure("plug-in-simnet-manipulate")
config = procedure.create_config()
config.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
config.set_property("image", image)
config.set_core_object_array("drawables", [layer])
config.set_property("source-channel", channel)
procedure.run(config)
"""


def test_dialog_screenshot_under_xvfb(gimp):
    """The procedure's dialog opens in real GIMP under Xvfb and shows the engine's live preview;
    the screenshot is kept in tests/artefacts/gimp_dialog.png (git-ignored) for a person to look at."""
    import time

    from PIL import ImageGrab

    if shutil.which("Xvfb") is None:
        pytest.skip("GIMP is there but Xvfb is not (Debian's xvfb package)")
    sockets = CHROOT / "tmp" / ".X11-unix"
    sockets.mkdir(parents=True, exist_ok=True)
    with virtual_screen(1280, 900) as display:
        gimp_process = None
        try:
            subprocess.run(["mount", "--bind", "/tmp/.X11-unix", str(sockets)], check=True)
            shown = CHROOT / "tmp" / "simnet-preview-shown"
            shown.unlink(missing_ok=True)
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp", "DISPLAY": display, "LANG": "C.UTF-8",
                   "GIMP3_DIRECTORY": "/" + str(gimp.relative_to(CHROOT)), "SIMNET_TEST_PREVIEW_FILE": "/tmp/simnet-preview-shown"}
            gimp_process = subprocess.Popen(
                ["chroot", str(CHROOT), "gimp-3.0", "-df", "--no-splash", "--batch-interpreter=python-fu-eval", "-b", "-"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, text=True,
                start_new_session=True,  # its own process group: GIMP and its plug-ins, and nothing else
            )
            gimp_process.stdin.write(DIALOG_SCRIPT)
            gimp_process.stdin.close()
            shot, previous = None, None
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                time.sleep(3)
                shot = ImageGrab.grab(xdisplay=display)
                pixels = np.asarray(shot)
                if pixels.std() > 10 and previous is not None and np.array_equal(pixels, previous) and shown.exists():
                    break  # the preview in, and the screen settled
                previous = pixels
            artefacts = HERE / "artefacts"
            artefacts.mkdir(exist_ok=True)
            shot.save(artefacts / "gimp_dialog.png")
            assert np.asarray(shot).std() > 10, "nothing was drawn on the Xvfb screen"
            # the live preview came from the engine: a 384 px preview of the 320 x 200 image
            assert shown.exists() and shown.read_text() == "320x200"
        finally:
            if gimp_process is not None:
                try:
                    os.killpg(gimp_process.pid, signal.SIGKILL)  # the processes this test started, by their group
                except ProcessLookupError:
                    pass
                gimp_process.wait()
            subprocess.run(["umount", "-l", str(sockets)], check=False)


def test_one_edit_moves_every_layer_of_a_group_into_a_mirrored_group(cases):
    from engine import apply, solve
    from engine.edit import from_masks

    entry = cases["group"]
    assert entry["status"] == "success", entry
    assert entry["top"] == ["Manipulated Figure", "Figure", "Paper"]  # just above the original group
    assert entry["group"] == ["Manipulated Figure", 90, True]
    # names (GIMP keeps names unique: "Line art #1"), modes, opacity and visibility mirrored
    children = [[re.sub(r" #\d+$", "", name), *look] for name, *look in entry["children"]]
    assert children == [["Line art", 100, "normal", False], ["Colour", 100, "normal", True], ["Shadow", 50, "multiply", True]]
    assert entry["unchanged"]
    folder = cases["_folder"]
    held = {name: _raw(folder, f"group.{name}.raw", 4, np.uint8) / np.float32(255) for name in ("Line art", "Colour", "Shadow")}
    source, target = (_raw(folder, f"group.{name}.raw", 1) / np.float32(255) for name in ("source", "target"))
    solved = solve(held["Colour"], from_masks((H, W), source, target), "moments")
    for name, pixels in held.items():  # each layer is the engine's replay of the edit solved on the colour layer
        got = _raw(folder, f"group.{name} #1.result.raw", 4, np.uint8)
        expected = np.round(np.clip(apply(solved, pixels), 0, 1) * 255)
        assert np.abs(got.astype(np.float32) - expected).max() <= 1, name
    lines = _raw(folder, "group.Line art #1.result.raw", 4, np.uint8)
    assert (lines[26, 52:72, 3] == 255).all() and (lines[..., 3] > 0).sum() == 20  # the ink moved, still one line
    selected = entry["selected"]
    assert selected["status"] == "success", selected
    assert selected["in_group"] == ["Line art", "Manipulated layers", "Colour", "Shadow"]  # above the painting
    assert [re.sub(r" #\d+$", "", name) for name in selected["made"]] == ["Colour", "Line art"]
    assert "Several layers are selected" in entry["several"]
    assert "'Details' (group layer)" in entry["refused"] and "Rasterize them" in entry["refused"]
    assert entry["top_after"] == entry["top"]


def test_an_edit_solved_on_the_visible_image_is_replayed_on_the_painting_layer(cases):
    from engine import apply, solve
    from engine.edit import from_masks

    entry = cases["group"]["visible"]
    assert entry["status"] == "success", entry
    assert entry["name"] == "Manipulated Colour"
    folder = cases["_folder"]
    shown = _raw(folder, "group.visible.raw", 4, np.uint8) / np.float32(255)
    colour = _raw(folder, "group.Colour.raw", 4, np.uint8) / np.float32(255)
    assert np.abs(shown - colour).max() > 0.05  # the visible image is not the layer (the shadow, the paper)
    source, target = (_raw(folder, f"group.{name}.raw", 1) / np.float32(255) for name in ("source", "target"))
    expected = np.round(np.clip(apply(solve(shown, from_masks((H, W), source, target), "moments"), colour), 0, 1) * 255)
    got = _raw(folder, "group.visible.result.raw", 4, np.uint8)
    assert np.abs(got.astype(np.float32) - expected).max() <= 1


def test_install_engine_from_the_zip_in_a_fresh_profile(gimp, tmp_path):
    """The plug-in unzipped from `simnet package gimp` into a fresh profile, no engine recorded:
    it says the engine is missing, its "Install SIM-Net engine..." installs the engine the zip
    carries with the chroot's own Python (a private environment in the data folder, its packages
    from the registry), and then it manipulates."""
    import zipfile

    from engine.app.install import package_gimp

    if not registry_reachable(tmp_path / "probe"):
        pytest.skip("the package registry cannot be reached: installing the engine needs it")
    profile = CHROOT / "tmp" / "simnet-gimp-install-profile"
    data = CHROOT / "tmp" / "simnet-gimp-install-data"
    for folder in (profile, data):
        shutil.rmtree(folder, ignore_errors=True)
    (profile / "plug-ins").mkdir(parents=True)
    with zipfile.ZipFile(package_gimp(tmp_path / "gimp.zip")) as archive:
        for info in archive.infolist():  # as unzip does: the files and their permission bits
            archive.extract(info, profile / "plug-ins")
            mode = info.external_attr >> 16
            if mode and not info.is_dir():
                (profile / "plug-ins" / info.filename).chmod(mode & 0o777)
    (profile / "plug-ins" / "simnet_manipulate" / "engine.json").unlink()  # another machine: no engine recorded
    # how this machine reaches the registry: its index and proxy settings, and its certificates
    # (a proxy that re-signs TLS is trusted by the host's bundle, not by the chroot's)
    passed = {k: v for k, v in os.environ.items() if k.startswith("PIP_INDEX") or k.lower().endswith("_proxy")}
    bundle = Path(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"))
    if bundle.is_file():
        shutil.copy(bundle, CHROOT / "tmp" / "simnet-host-certificates.crt")
        passed.update(PIP_CERT="/tmp/simnet-host-certificates.crt", SSL_CERT_FILE="/tmp/simnet-host-certificates.crt")
    log = run_cases(profile, "install", tmp_path, {"XDG_DATA_HOME": "/" + str(data.relative_to(CHROOT)), **passed})
    assert log["before"]["status"] == "execution-error" and "Install SIM-Net engine..." in log["before"]["message"]
    assert log["install"]["status"] == "success", log["install"]
    recorded = json.loads((profile / "plug-ins" / "simnet_manipulate" / "engine.json").read_text())
    assert recorded["command"][0].startswith("/tmp/simnet-gimp-install-data/simnet-manipulate/engine/")
    assert "moments" in recorded["models"]
    assert log["after"]["status"] == "success", log["after"]
    assert log["after"]["layers"] == ["Manipulated Exemplar", "Exemplar", "Background"]
