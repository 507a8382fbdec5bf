"""Put the host plug-ins where the hosts look for them, wired to this environment's engine.

`simnet install-plugin krita` copies krita_plugin/ into Krita's pykrita folder, adds the engine
link (engine/link/: the protocol and the client, the one folder the plug-ins vendor) and an engine.json that records
the command starting this environment's worker, and enables the plug-in in kritarc.
`simnet package krita` builds the zip that Krita's "Import Python Plugin from File" takes, and
`simnet package gimp` the zip of the GIMP plug-in's folder; both carry the engine as a wheel for
the plug-ins' "Install SIM-Net engine..." (engine/link/engine_setup.py).
`simnet install-plugin gimp` copies gimp_plugin/simnet_manipulate/ with the link and the
engine.json into the plug-ins folder of GIMP's 3.0 and 3.2 profiles (or --profile), with the run
bit GIMP requires on the main file.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..errors import InputError
from ..link.client import worker_command

LINK = Path(__file__).resolve().parents[1] / "link"
PLUGIN_NAME = "simnet_manipulate"


def _source(host: str) -> Path:
    if host not in ("krita", "gimp"):
        raise InputError(f"no plug-in for '{host}'; available: krita, gimp")
    package = importlib.import_module(f"{host}_plugin")
    return Path(str(package.__file__)).resolve().parent


def _engine_files(folder: Path, command: list[str] | None = None) -> None:
    """The vendored link (protocol and client) and the worker command, into the plug-in's own folder."""
    shutil.copytree(LINK, folder / "link", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
    from ..models import default_model, model_names

    # the models too, for the GIMP dialog's model choice (declared before any worker runs)
    settings = {"command": command or worker_command(sys.executable), "models": model_names(),
                "default_model": default_model()[0]}
    (folder / "engine.json").write_text(json.dumps(settings, indent=1) + "\n")


def default_gimp_profiles() -> list[Path]:
    """GIMP 3.0's and 3.2's profile folders (each version reads only its own plug-ins)."""
    return [Path.home() / ".config" / "GIMP" / version for version in ("3.0", "3.2")]


def install_gimp(profile: Path | None = None, uninstall: bool = False, dry_run: bool = False,
                 command: list[str] | None = None) -> list[str]:
    """Install (or remove) the GIMP plug-in in `profile` (default: the 3.0 and 3.2 profiles);
    returns what was (or would be) done. `command` overrides the recorded worker command."""
    targets = [p / "plug-ins" / PLUGIN_NAME for p in ([profile] if profile else default_gimp_profiles())]
    if uninstall:
        actions = [f"remove {t}" for t in targets if t.exists()]
        if not dry_run:
            for target in targets:
                shutil.rmtree(target, ignore_errors=True)
        return actions
    actions = [f"copy the plug-in to {t}" for t in targets]
    actions.append(f"record the worker command {' '.join(command or worker_command(sys.executable))}")
    if not dry_run:
        source = _source("gimp") / PLUGIN_NAME
        for target in targets:
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            _engine_files(target, command)
            main = target / f"{PLUGIN_NAME}.py"
            main.chmod(main.stat().st_mode | 0o111)  # GIMP ignores plug-ins it cannot execute
    return actions


def default_krita_profile() -> Path:
    return Path.home() / ".local" / "share" / "krita"


def default_config_dir() -> Path:
    return Path.home() / ".config"


def _stage(folder: Path) -> None:
    """Lay out the installable files in `folder` (the desktop file and the package)."""
    source = _source("krita")
    shutil.copy2(source / f"{PLUGIN_NAME}.desktop", folder / f"{PLUGIN_NAME}.desktop")
    shutil.copytree(source / PLUGIN_NAME, folder / PLUGIN_NAME,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _engine_files(folder / PLUGIN_NAME)


def installed_paths(profile: Path) -> list[Path]:
    pykrita = profile / "pykrita"
    return [pykrita / f"{PLUGIN_NAME}.desktop", pykrita / PLUGIN_NAME]


def set_enabled(kritarc: Path, enabled: bool, name: str = PLUGIN_NAME) -> None:
    """Write `enable_<name>=true|false` in kritarc's [python] group, keeping every other line
    as it was."""
    key = f"enable_{name}="
    lines = kritarc.read_text().splitlines() if kritarc.exists() else []
    lines = [line for line in lines if not line.startswith(key)]
    if "[python]" not in lines:
        lines += ["", "[python]"] if lines else ["[python]"]
    lines.insert(lines.index("[python]") + 1, key + ("true" if enabled else "false"))
    kritarc.parent.mkdir(parents=True, exist_ok=True)
    kritarc.write_text("\n".join(lines) + "\n")


def install_krita(profile: Path | None = None, config: Path | None = None, uninstall: bool = False,
                  dry_run: bool = False) -> list[str]:
    """Install (or remove) the Krita plug-in; returns what was (or would be) done."""
    profile = profile or default_krita_profile()
    kritarc = (config or default_config_dir()) / "kritarc"
    targets = installed_paths(profile)
    if uninstall:
        actions = [f"remove {p}" for p in targets if p.exists()] + [f"disable {PLUGIN_NAME} in {kritarc}"]
        if not dry_run:
            for path in targets:
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
            if kritarc.exists():
                set_enabled(kritarc, False)
        return actions
    actions = [f"copy the plug-in to {p}" for p in targets] + [
        f"record the worker command {' '.join(worker_command(sys.executable))}",
        f"enable {PLUGIN_NAME} in {kritarc}",
    ]
    if not dry_run:
        with tempfile.TemporaryDirectory() as staging:
            _stage(Path(staging))
            targets[0].parent.mkdir(parents=True, exist_ok=True)
            if targets[1].exists():
                shutil.rmtree(targets[1])
            shutil.copy2(Path(staging) / targets[0].name, targets[0])
            shutil.copytree(Path(staging) / PLUGIN_NAME, targets[1])
        set_enabled(kritarc, True)
    return actions


def engine_wheel(folder: Path) -> Path:
    """Build the engine's wheel (this source tree, without its dependencies) into `folder`."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise InputError("the package is built from a source checkout of SIM-Net Manipulate (pip install -e .)")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                            "--wheel-dir", str(folder), str(root)], check=False, capture_output=True, text=True)
    wheels = sorted(folder.glob("simnet_manipulate-*.whl"))
    if built.returncode != 0 or not wheels:
        raise InputError(f"could not build the engine's wheel: {built.stderr.strip()[-500:]}")
    return wheels[-1]


def package_krita(output: Path) -> Path:
    """The zip for Krita's Tools > Scripts > Import Python Plugin from File (with directory
    entries, which that importer needs). It carries the engine as a wheel, which the plug-in's
    "Install engine..." installs on a machine that has none (engine/link/engine_setup.py); on
    this machine it runs this environment's engine, as `simnet install-plugin` does."""
    if output.suffix != ".zip":
        raise InputError(f"{output}: the package must be a .zip file")
    if not output.parent.is_dir():
        raise InputError(f"{output}: the folder {output.parent} does not exist")
    with tempfile.TemporaryDirectory() as staging:
        folder = Path(staging)
        _stage(folder)
        (folder / PLUGIN_NAME / "engine").mkdir()
        engine_wheel(folder / PLUGIN_NAME / "engine")
        _zip(folder, output)
    return output


def package_gimp(output: Path) -> Path:
    """The zip of the GIMP plug-in's folder, to unzip into GIMP's plug-ins folder (the run bit
    GIMP needs is kept in the zip), with the engine as a wheel for its "Install SIM-Net
    engine..." (engine/link/engine_setup.py)."""
    if output.suffix != ".zip":
        raise InputError(f"{output}: the package must be a .zip file")
    if not output.parent.is_dir():
        raise InputError(f"{output}: the folder {output.parent} does not exist")
    with tempfile.TemporaryDirectory() as staging:
        folder = Path(staging) / PLUGIN_NAME
        shutil.copytree(_source("gimp") / PLUGIN_NAME, folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _engine_files(folder)
        main = folder / f"{PLUGIN_NAME}.py"
        main.chmod(main.stat().st_mode | 0o111)
        (folder / "engine").mkdir()
        engine_wheel(folder / "engine")
        _zip(Path(staging), output)
    return output


def _zip(folder: Path, output: Path) -> None:
    """Everything under `folder` into the zip `output`, with directory entries (Krita's importer
    needs them) and each file's permission bits (GIMP runs only executable plug-ins)."""
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            name = path.relative_to(folder).as_posix()
            archive.write(path, name + "/" if path.is_dir() else name)
