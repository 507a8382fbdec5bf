import os

"""`simnet install-plugin` and `simnet package` against temporary profiles."""

import io
import json
import sys
import zipfile
from pathlib import Path

import pytest

from engine.app.cli import main
from engine.app.install import installed_paths
from engine.link.client import worker_command

from .conftest import REPO


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if "__pycache__" not in p.parts)


def test_install_dry_run_uninstall(tmp_path, capsys):
    profile, config = tmp_path / "krita", tmp_path / "config"
    config.mkdir()
    (config / "kritarc").write_text("[General]\nfoo=bar\n\n[python]\nenable_other=true\n")
    args = ["install-plugin", "krita", "--profile", str(profile), "--config", str(config)]

    assert main(args + ["--dry-run"]) == 0
    assert "would copy the plug-in" in capsys.readouterr().out
    assert not profile.exists() and "simnet" not in (config / "kritarc").read_text()

    assert main(args) == 0
    desktop, package = installed_paths(profile)
    assert desktop.is_file() and (package / "__init__.py").is_file()
    for name in ("__init__.py", "protocol.py", "client.py"):
        assert (package / "link" / name).read_bytes() == (REPO / "engine" / "link" / name).read_bytes()
    assert json.loads((package / "engine.json").read_text())["command"] == worker_command(sys.executable)
    kritarc = (config / "kritarc").read_text()
    assert "enable_simnet_manipulate=true" in kritarc and "foo=bar" in kritarc and "enable_other=true" in kritarc

    assert main(args) == 0  # again: replaces, does not duplicate
    assert (config / "kritarc").read_text().count("enable_simnet_manipulate") == 1

    assert main(args + ["--uninstall"]) == 0
    assert not desktop.exists() and not package.exists()
    kritarc = (config / "kritarc").read_text()
    assert "enable_simnet_manipulate=false" in kritarc and "foo=bar" in kritarc


def test_gimp_install_dry_run_and_uninstall(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    folder = tmp_path / "profile" / "plug-ins" / "simnet_manipulate"
    assert main(["install-plugin", "gimp", "--profile", str(tmp_path / "profile"), "--dry-run"]) == 0
    assert "would copy the plug-in to" in capsys.readouterr().out and not folder.exists()
    assert main(["install-plugin", "gimp", "--profile", str(tmp_path / "profile")]) == 0
    assert {p.name for p in folder.iterdir()} >= {"simnet_manipulate.py", "adapter.py", "gimp_host.py", "link", "engine.json"}
    assert os.access(folder / "simnet_manipulate.py", os.X_OK)  # GIMP skips plug-ins without the run bit
    assert json.loads((folder / "engine.json").read_text())["command"][1:] == ["-m", "engine", "worker"]
    assert main(["install-plugin", "gimp", "--profile", str(tmp_path / "profile"), "--uninstall"]) == 0
    assert not folder.exists()
    # without --profile: both GIMP 3.0's and 3.2's profiles
    assert main(["install-plugin", "gimp"]) == 0
    for version in ("3.0", "3.2"):
        assert (tmp_path / "home" / ".config" / "GIMP" / version / "plug-ins" / "simnet_manipulate" / "engine.json").exists()


def test_package_for_krita_import(tmp_path):
    output = tmp_path / "plugin.zip"
    assert main(["package", "krita", "-o", str(output)]) == 0
    with zipfile.ZipFile(output) as archive:
        names = archive.namelist()
    assert "simnet_manipulate/" in names  # Krita's importer needs directory entries
    assert {"simnet_manipulate.desktop", "simnet_manipulate/__init__.py", "simnet_manipulate/link/client.py",
            "simnet_manipulate/link/engine_setup.py", "simnet_manipulate/engine/",
            "simnet_manipulate/link/protocol.py",
            "simnet_manipulate/engine.json"} <= set(names)
    wheels = [n for n in names if n.startswith("simnet_manipulate/engine/simnet_manipulate-") and n.endswith(".whl")]
    assert len(wheels) == 1  # the engine, for "Install engine..." on a machine that has none
    with zipfile.ZipFile(output) as archive, zipfile.ZipFile(io.BytesIO(archive.read(wheels[0]))) as wheel:
        inside = wheel.namelist()
    assert "engine/replay.py" in inside and any(n.startswith("engine/weights/simnet-small/") for n in inside)
    assert main(["package", "krita", "-o", str(tmp_path / "plugin.tar")]) == 2


def test_package_for_gimp_keeps_the_run_bit_and_carries_the_engine(tmp_path):
    output = tmp_path / "gimp.zip"
    assert main(["package", "gimp", "-o", str(output)]) == 0
    with zipfile.ZipFile(output) as archive:
        infos = {info.filename: info for info in archive.infolist()}
    main_file = infos["simnet_manipulate/simnet_manipulate.py"]
    assert (main_file.external_attr >> 16) & 0o111  # GIMP runs only executable plug-ins
    assert {"simnet_manipulate/link/engine_setup.py", "simnet_manipulate/live_preview.py"} <= set(infos)
    assert any(name.startswith("simnet_manipulate/engine/simnet_manipulate-") for name in infos)


def test_engine_setup_finds_a_python_reads_pip_and_says_what_is_missing(tmp_path, monkeypatch):
    from engine.link import engine_setup

    found = engine_setup.find_python((Path(sys.executable).name,))
    assert Path(found).name == Path(sys.executable).name
    monkeypatch.setenv("PATH", str(tmp_path))  # no Python at all
    with pytest.raises(engine_setup.SetupError, match="needs Python 3.11 or newer"):
        engine_setup.find_python()
    with pytest.raises(engine_setup.SetupError, match="carries no engine"):
        engine_setup.bundled_wheel(tmp_path)
    collected, seen = 0, []
    for line in ["Processing ./simnet_manipulate-0.1.0-py3-none-any.whl", "Collecting numpy>=1.26",
                 "  Downloading numpy-2.4.whl (18 MB)", "Installing collected packages: numpy",
                 "Successfully installed numpy-2.4"]:
        collected, fraction = engine_setup.pip_fraction(line, collected)
        seen.append(fraction)
    assert collected == 2 and seen[2] is None and seen[-1] == 1.0
    assert [f for f in seen if f is not None] == sorted(f for f in seen if f is not None)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert engine_setup.engine_home() == tmp_path / "data" / "simnet-manipulate"


@pytest.mark.parametrize("path", sorted((REPO / "krita_plugin").rglob("*.py")), ids=lambda p: p.name)
def test_plugin_imports_only_the_standard_library_krita_and_qt(path):
    lines = map(str.strip, path.read_text().splitlines())
    imports = [line.split()[1] for line in lines if line.startswith(("import ", "from "))]
    allowed = set(sys.stdlib_module_names) | {"krita", "PyQt5", "PyQt6"}
    assert all(name.startswith(".") or name.split(".")[0] in allowed for name in imports), imports
