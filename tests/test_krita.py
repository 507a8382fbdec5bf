"""The Krita plug-in in real Krita: installed by `simnet install-plugin`, driven headless by
kritarunner, talking to a real worker. Skipped where Krita is not installed (CI installs it)."""

import json
import os
import shutil
import subprocess
import zipfile

import cv2
import numpy as np
import pytest

from engine import manipulate, manipulate_masks
from engine.app.install import install_krita, set_enabled
from engine.io.pixels import to_samples

from .conftest import REPO, registry_reachable, square_mask, textured, virtual_screen

KRITA_INSTALLED = shutil.which("kritarunner") is not None
pytestmark = pytest.mark.skipif(not KRITA_INSTALLED, reason="Krita is not installed (Debian's krita package)")
# Only where Krita is there, so that a machine without either says Krita is missing.
needs_screen = pytest.mark.skipif(KRITA_INSTALLED and shutil.which("Xvfb") is None,
                                  reason="Krita is installed but Xvfb is not (Debian's xvfb package)")

WIDTH, HEIGHT = 96, 64
# Krita depth -> numpy dtype, channel order of Node.pixelData, full scale
DEPTHS = {"U8": (np.uint8, "bgra", 255), "U16": (np.uint16, "bgra", 65535), "F16": (np.float16, "rgba", 1), "F32": (np.float32, "rgba", 1)}


def _layout(pixels, depth):
    """Engine pixels as the worker hands them to Krita at `depth` (its one conversion)."""
    dtype, order, _ = DEPTHS[depth]
    return to_samples(pixels, np.dtype(dtype).name, order)


# The group of the layers case, bottom first: name, opacity (0-255), blending mode, visible.
GROUP_LAYERS = [["Shadow", 128, "multiply", True], ["Colour", 255, "normal", True], ["Line art", 255, "normal", False]]


def _group_pixels():
    """Engine RGBA pixels of the three layers: a figure at (8, 10), 24 px, drawn across them."""
    figure = square_mask(HEIGHT, WIDTH, 8, 10, 24)
    colour = textured(HEIGHT, WIDTH, 4, seed=6)
    colour[..., 3] = 1.0
    lines = np.zeros((HEIGHT, WIDTH, 4), np.float32)
    lines[12, 10:30] = (0.0, 0.0, 0.0, 1.0)  # an ink line inside the figure
    shadow = np.zeros((HEIGHT, WIDTH, 4), np.float32)
    shadow[figure] = (0.2, 0.1, 0.3, 0.5)
    return {"Shadow": shadow, "Colour": colour, "Line art": lines}


def _write_layers_case(work):
    for name, pixels in _group_pixels().items():
        _layout(pixels, "U8").tofile(work / f"{name}.raw")
    (square_mask(HEIGHT, WIDTH, 8, 10, 24) * 255).astype(np.uint8).tofile(work / "layers_source.raw")
    (square_mask(HEIGHT, WIDTH, 50, 30, 24) * 255).astype(np.uint8).tofile(work / "layers_target.raw")
    return {"width": WIDTH, "height": HEIGHT, "layers": GROUP_LAYERS, "painting": "Colour"}


@pytest.fixture(scope="module")
def krita_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    work = tmp_path_factory.mktemp("work")
    profile = home / ".local" / "share" / "krita"
    install_krita(profile, home / ".config")
    pixels = textured(HEIGHT, WIDTH, 4)
    pixels[..., 3] = 1.0
    source = (square_mask(HEIGHT, WIDTH, 8, 10, 24) * 255).astype(np.uint8)
    soft_target = np.zeros((HEIGHT, WIDTH), np.uint8)
    soft_target[20:50, 50:80] = 255
    soft_target[19, 50:80] = 128  # a feathered edge
    source.tofile(work / "source.raw")
    soft_target.tofile(work / "target.raw")
    np.zeros((HEIGHT, WIDTH), np.uint8).tofile(work / "empty.raw")
    cases = []
    for depth in DEPTHS:
        _layout(pixels, depth).tofile(work / f"{depth}.raw")
        cases.append(dict(name=f"manipulate_{depth}", action="manipulate", model="RGBA", depth=depth, width=WIDTH,
                          height=HEIGHT, pixels=f"{depth}.raw", source="source.raw", target="target.raw"))
    cases += [
        dict(name="segment_U8", action="segment", model="RGBA", depth="U8", width=WIDTH, height=HEIGHT, pixels="U8.raw"),
        dict(name="no_source_mask", action="manipulate", model="RGBA", depth="U8", width=WIDTH, height=HEIGHT,
             pixels="U8.raw", target="target.raw"),
        dict(name="no_target", action="manipulate", model="RGBA", depth="U8", width=WIDTH, height=HEIGHT,
             pixels="U8.raw", source="source.raw"),
        dict(name="empty_source", action="manipulate", model="RGBA", depth="U8", width=WIDTH, height=HEIGHT,
             pixels="U8.raw", source="empty.raw", target="target.raw"),
    ]
    red, white = np.array([1.0, 0.1, 0.1, 1.0]), np.ones(4)
    exemplar_map = np.where(square_mask(HEIGHT, WIDTH, 8, 10, 24)[..., None], red, white)
    edited_map = np.where(square_mask(HEIGHT, WIDTH, 50, 20, 30)[..., None], red, white)
    _layout(exemplar_map, "U16").tofile(work / "map_a.raw")
    _layout(edited_map, "U16").tofile(work / "map_b.raw")
    cases.append(dict(name="maps_U16", action="maps", model="RGBA", depth="U16", width=WIDTH, height=HEIGHT,
                      pixels="U16.raw", exemplar_map="map_a.raw", target_map="map_b.raw"))
    cases.append(dict(name="engine_missing", action="manipulate", model="RGBA", depth="U8", width=WIDTH,
                      height=HEIGHT, pixels="U8.raw", source="source.raw", target="target.raw", engine="missing"))
    np.zeros((HEIGHT, WIDTH, 2), np.uint8).tofile(work / "gray.raw")
    cases.append(dict(name="grey_document", action="manipulate", model="GRAYA", depth="U8", width=WIDTH, height=HEIGHT,
                      pixels="gray.raw", source="source.raw", target="target.raw"))
    layers_case = _write_layers_case(work)
    (work / "spec.json").write_text(json.dumps({"pykrita": str(profile / "pykrita"), "cases": cases, "save_ora": True,
                                                "layers_case": layers_case}))
    # Krita as a desktop starts it: a system PATH (a venv's or pyenv's python3 first on PATH
    # makes Krita's embedded Python adopt that prefix and lose Debian's PyQt5). The worker is
    # unaffected: engine.json names its interpreter by absolute path.
    outcome = _kritarunner("krita_cases", work, "outcome.json", _system_env(home), 300)
    return work, outcome, pixels, source, soft_target


def _kritarunner(script: str, work, outcome_name: str, env: dict, timeout: int) -> dict:
    """Run tests/krita/SCRIPT.py's main(work) in real Krita, headless; the outcome it wrote."""
    env = {**env, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO / "tests" / "krita")}
    completed = subprocess.run(["timeout", str(timeout), "kritarunner", "-s", script, "-f", "main", str(work)],
                               env=env, capture_output=True, text=True)
    outcome_file = work / outcome_name
    assert outcome_file.exists(), completed.stdout[-3000:] + completed.stderr[-3000:]
    outcome = json.loads(outcome_file.read_text())
    assert "crash" not in outcome, outcome.get("crash")
    return outcome


@pytest.mark.parametrize("depth", list(DEPTHS))
def test_result_layer_matches_the_engine_and_sits_above_the_exemplar(krita_run, depth):
    work, outcome, pixels, source, target = krita_run
    record = outcome[f"manipulate_{depth}"]
    assert record.get("error") is None, record
    assert record["new_layer"] == "Manipulated Exemplar"
    names = [name for name, _ in record["layers"]]
    assert names.index("Manipulated Exemplar") == names.index("Exemplar") + 1
    assert record["exemplar_unchanged"]
    dtype, order, top = DEPTHS[depth]
    got = np.fromfile(work / f"manipulate_{depth}.result", dtype).reshape(HEIGHT, WIDTH, 4)
    # the engine directly, on exactly the pixels Krita held
    held = np.fromfile(work / f"{depth}.raw", dtype).reshape(HEIGHT, WIDTH, 4).astype(np.float32) / top
    if order == "bgra":
        held = held[:, :, [2, 1, 0, 3]]
    expected = _layout(manipulate_masks(held, source / 255.0, target / 255.0), depth)
    difference = np.abs(got.astype(np.float64) - expected.astype(np.float64)).max()
    assert difference == 0 if top > 1 else difference < 1e-3  # same bytes in, same arithmetic


def test_region_map_layers(krita_run):
    work, outcome, *_ = krita_run
    record = outcome["maps_U16"]
    assert record.get("error") is None and record["new_layer"] == "Manipulated Exemplar" and record["exemplar_unchanged"]
    names = [name for name, _ in record["layers"]]
    assert names.index("Manipulated Exemplar") == names.index("Exemplar") + 1
    got = np.fromfile(work / "maps_U16.result", np.uint16).reshape(HEIGHT, WIDTH, 4)
    held = np.fromfile(work / "U16.raw", np.uint16).reshape(HEIGHT, WIDTH, 4)[:, :, [2, 1, 0, 3]] / np.float32(65535)
    labels = square_mask(HEIGHT, WIDTH, 8, 10, 24).astype(np.int32)
    moved = square_mask(HEIGHT, WIDTH, 50, 20, 30).astype(np.int32)
    assert np.array_equal(got, _layout(manipulate(held, labels, moved), "U16"))


def test_segment_adds_a_flat_colour_layer(krita_run):
    work, outcome, *_ = krita_run
    record = outcome["segment_U8"]
    assert record["new_layer"] == "Regions of Exemplar" and record["exemplar_unchanged"]
    colours = np.fromfile(work / "segment_U8.result", np.uint8).reshape(HEIGHT, WIDTH, 4)
    assert (colours[..., 3] == 255).all()
    assert 1 <= len(np.unique(colours.reshape(-1, 4), axis=0)) <= 4


def test_maps_mode_preselects_the_segment_result_and_its_edited_copy(krita_run):
    _, outcome, *_ = krita_run
    found = outcome["default_maps"]
    assert found["segmented"] == [1, 0]  # "Regions of Exemplar" and, above it, its copy
    assert found["plain"] == [1, 0] and found["one layer"] is None


@pytest.mark.parametrize("case,message", [
    ("no_source_mask", "local selection mask"),
    ("no_target", "Select where the region should go"),
    ("empty_source", "selection mask of the region to move is empty"),
    ("grey_document", "GRAYA colour. Convert the image to RGB/Alpha"),
    ("engine_missing", "engine could not be started. Reinstall the plug-in with `simnet install-plugin`"),
])
def test_errors_leave_the_document_untouched(krita_run, case, message):
    _, outcome, *_ = krita_run
    record = outcome[case]
    assert message in record["error"]
    assert record["exemplar_unchanged"]
    assert [name for name, _ in record["layers"]] == ["Background", "Exemplar"]


def _system_env(home, **extra):
    # see krita_run: Krita must not inherit a venv's or pyenv's python3 on PATH
    return {"HOME": str(home), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", **extra}


@needs_screen
def test_an_ora_saved_by_krita_goes_through_batch(krita_run, tmp_path):
    from engine.app.cli import main
    from engine.io.ora import read_ora

    work, outcome, pixels, source, soft_target = krita_run
    assert outcome["ora_saved"]
    document = read_ora(work / "saved_by_krita.ora")
    layers = {l.name: l for l in document.layers}
    assert {"Paper", "Figure"} <= set(layers) and layers["Figure"].opacity == pytest.approx(0.8, abs=0.01)
    assert np.abs(layers["Figure"].placed(WIDTH, HEIGHT)[..., :3] - pixels[..., :3]).max() <= 1 / 255 + 1e-6
    cv2.imwrite(str(tmp_path / "src.png"), source)
    cv2.imwrite(str(tmp_path / "tgt.png"), soft_target)
    assert main(["--quiet", "batch", str(work / "saved_by_krita.ora"), "-o", str(tmp_path / "out.ora"), "--layers", "Figure",
                 "--source-mask", str(tmp_path / "src.png"), "--target-mask", str(tmp_path / "tgt.png")]) == 0
    names = [l.name for l in read_ora(tmp_path / "out.ora").layers]
    assert names.index("Figure (manipulated)") == names.index("Figure") - 1
    # one edit for every layer: the stack mirrored, each layer moved alike
    assert main(["--quiet", "batch", str(work / "saved_by_krita.ora"), "-o", str(tmp_path / "together.ora"), "--together",
                 "--model", "moments", "--source-mask", str(tmp_path / "src.png"), "--target-mask", str(tmp_path / "tgt.png")]) == 0
    together = read_ora(tmp_path / "together.ora")
    assert [(l.name, l.visible) for l in together.layers] == [(l.name, l.visible) for l in document.layers]
    assert together.layers[0].opacity == pytest.approx(document.layers[0].opacity, abs=0.01)


@needs_screen
def test_gui_menu_entries_dialog_and_result(krita_run, tmp_path):
    """Real Krita with a window: the installed plug-in loads, its actions sit in the Filter menu,
    and "Manipulate region from exemplar..." (dialog defaults accepted by the test hook) adds the
    engine's result above the exemplar while the UI keeps running."""
    work, _, pixels, source, target = krita_run
    (work / "gui_spec.json").write_text(json.dumps({"width": WIDTH, "height": HEIGHT}))
    home, out = tmp_path / "home", tmp_path / "out"
    out.mkdir()
    profile = home / ".local" / "share" / "krita"
    install_krita(profile, home / ".config")
    probe = REPO / "tests" / "krita" / "probe_plugin"
    shutil.copy(probe / "simnet_test_probe.desktop", profile / "pykrita")
    shutil.copytree(probe / "simnet_test_probe", profile / "pykrita" / "simnet_test_probe")
    set_enabled(home / ".config" / "kritarc", True, "simnet_test_probe")
    env = _system_env(home, SIMNET_PROBE_OUT=str(out), SIMNET_PROBE_WORK=str(work), SIMNET_TEST_ACCEPT_DIALOG="1",
                      SIMNET_TEST_DIALOG_SCREENSHOT=str(out / "dialog.png"))
    with virtual_screen(1600, 1000) as display:
        completed = subprocess.run(["timeout", "180", "krita", "--nosplash"], env={**env, "DISPLAY": display},
                                   capture_output=True, text=True)
    log = completed.stdout + completed.stderr
    assert "Error loading plugin" not in log
    assert (out / "gui.json").exists(), log[-3000:]
    found = json.loads((out / "gui.json").read_text())
    assert "crash" not in found, found.get("crash")
    assert "simnet_manipulate.extension" in found["extensions"]
    assert found["simnet_manipulate"] == "Manipulate region from exemplar..."
    # the preview's before/after toggle and its zoom to the edit change what it shows
    shots = [cv2.imread(str(out / name)) for name in ("dialog.png", "dialog-zoomed-before.png")]
    assert all(shot is not None for shot in shots) and shots[0].shape == shots[1].shape
    assert np.abs(shots[0].astype(int) - shots[1].astype(int)).mean() > 1
    assert found["simnet_segment"] == "Segment exemplar into regions"
    assert {"simnet_manipulate", "simnet_segment"} <= set(found["menus"]["Filter"])
    run = found["manipulate"]
    assert run["layers"] == ["Background", "Exemplar", "Manipulated Exemplar"] and run["exemplar_unchanged"]
    # the result is one undo step, and so is a mirrored group of results (Apply to several layers)
    assert run["after_undo"] == ["Background", "Exemplar"]
    group = run["mirrored_group"]
    assert group["inserted"] == group["before"] + ["Manipulated layers"]
    assert group["after_undo"] == group["before"]
    got = np.fromfile(out / "gui_result.raw", np.uint8).reshape(HEIGHT, WIDTH, 4)
    held = np.fromfile(work / "U8.raw", np.uint8).reshape(HEIGHT, WIDTH, 4)[:, :, [2, 1, 0, 3]] / np.float32(255)
    assert np.array_equal(got, _layout(manipulate_masks(held, source / 255.0, target / 255.0), "U8"))
    # the UI thread kept running: the 50 ms timer fired through the dialog and the job
    assert run["timer_ticks"] >= 0.5 * run["seconds"] / 0.05
    for artefact in ("krita_window.png", "dialog.png"):  # kept for a person to look at (git-ignored)
        assert (out / artefact).stat().st_size > 5_000
        shutil.copy(out / artefact, REPO / "tests" / "artefacts" / artefact)


def test_one_edit_moves_every_layer_of_a_group_into_a_mirrored_group(krita_run):
    from engine import apply, solve
    from engine.edit import from_masks

    work, outcome, *_ = krita_run
    record = outcome["layers"]
    assert record["root"][:3] == ["Background", "Figure", "Manipulated Figure"]  # just above the original group
    assert record["group"] == ["Manipulated Figure", 230, "grouplayer"]
    assert record["children"] == GROUP_LAYERS  # names, opacity, blending modes and visibility mirrored
    assert record["originals_unchanged"] and record["original_group"] == GROUP_LAYERS
    # every layer replays the edit solved once on the colour layer, exactly as the engine does
    held = {name: np.fromfile(work / f"{name}.raw", np.uint8).reshape(HEIGHT, WIDTH, 4)[:, :, [2, 1, 0, 3]] / np.float32(255)
            for name, *_ in GROUP_LAYERS}
    edit = from_masks((HEIGHT, WIDTH), square_mask(HEIGHT, WIDTH, 8, 10, 24).astype(np.float32),
                      square_mask(HEIGHT, WIDTH, 50, 30, 24).astype(np.float32))
    solved = solve(held["Colour"], edit, "moments")
    for name, *_ in GROUP_LAYERS:
        got = np.fromfile(work / f"layers_{name}.result", np.uint8).reshape(HEIGHT, WIDTH, 4)
        assert np.array_equal(got, _layout(apply(solved, held[name]), "U8")), name
    lines = np.fromfile(work / "layers_Line art.result", np.uint8).reshape(HEIGHT, WIDTH, 4)
    assert (lines[32, 52:72, 3] == 255).all() and (lines[..., 3] > 0).sum() == 20  # the ink moved, still one line
    assert "'Inked outline' (vector layer)" in record["refused"] and "Convert them to paint layers" in record["refused"]
    assert record["root_after_refusal"] == record["root"]


def test_an_edit_solved_on_the_visible_image_is_replayed_on_the_painting_layer(krita_run):
    from engine import apply, solve
    from engine.edit import from_masks

    work, outcome, *_ = krita_run
    record = outcome["layers"]["visible"]
    assert record["group_children"] == ["Shadow", "Colour", "Manipulated Colour", "Line art"]
    assert record["originals_unchanged"]
    shown = np.fromfile(work / "layers_visible.raw", np.uint8).reshape(HEIGHT, WIDTH, 4)[:, :, [2, 1, 0, 3]] / np.float32(255)
    colour = np.fromfile(work / "Colour.raw", np.uint8).reshape(HEIGHT, WIDTH, 4)[:, :, [2, 1, 0, 3]] / np.float32(255)
    assert np.abs(shown - colour).max() > 0.05  # the visible image is not the layer (the shadow, the group's opacity)
    edit = from_masks((HEIGHT, WIDTH), square_mask(HEIGHT, WIDTH, 8, 10, 24).astype(np.float32),
                      square_mask(HEIGHT, WIDTH, 50, 30, 24).astype(np.float32))
    got = np.fromfile(work / "layers_visible.result", np.uint8).reshape(HEIGHT, WIDTH, 4)
    assert np.array_equal(got, _layout(apply(solve(shown, edit, "moments"), colour), "U8"))


def test_install_engine_from_the_zip_in_a_fresh_profile(krita_run, tmp_path):
    """The artist's path with only Krita: the zip imported into a fresh profile, no engine on the
    machine; the plug-in says so, installs the engine the zip carries (a private environment in
    the data folder, its packages from the registry) and then manipulates a document."""
    from engine.app.install import package_krita

    if not registry_reachable(tmp_path / "probe"):
        pytest.skip("the package registry cannot be reached: installing the engine needs it")
    work, _, pixels, source, target = krita_run
    home = tmp_path / "home"
    pykrita = home / ".local" / "share" / "krita" / "pykrita"
    pykrita.mkdir(parents=True)
    with zipfile.ZipFile(package_krita(tmp_path / "plugin.zip")) as archive:
        archive.extractall(pykrita)  # what Krita's "Import Python Plugin from File" does
    (pykrita / "simnet_manipulate" / "engine.json").unlink()  # another machine: no engine recorded
    (work / "install_spec.json").write_text(json.dumps({"pykrita": str(pykrita), "width": WIDTH, "height": HEIGHT}))
    passed = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k.lower().endswith("_proxy")
              or k in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")}  # how this machine reaches the registry
    env = _system_env(home, XDG_DATA_HOME=str(tmp_path / "data"), **passed)
    outcome = _kritarunner("krita_install", work, "install_outcome.json", env, 900)
    assert "could not be started" in outcome["before"]
    assert outcome["command"][0].startswith(str(tmp_path / "data" / "simnet-manipulate" / "engine"))
    fractions = outcome["fractions"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0, outcome["last_lines"]
    assert "moments" in outcome["models"]
    assert outcome["new_layer"] == "Manipulated Exemplar"
    got = np.fromfile(work / "installed.result", np.uint8).reshape(HEIGHT, WIDTH, 4)
    held = np.fromfile(work / "U8.raw", np.uint8).reshape(HEIGHT, WIDTH, 4)[:, :, [2, 1, 0, 3]] / np.float32(255)
    expected = _layout(manipulate_masks(held, source / 255.0, target / 255.0, model="moments"), "U8")
    # the same engine, though its packages may be newer releases than this environment's
    assert np.abs(got.astype(int) - expected.astype(int)).mean() < 1.0
