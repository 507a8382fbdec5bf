"""Install the engine from inside a host, no terminal: the plug-ins' "Install engine..." action.

A plug-in imported from its zip (Krita's *Import Python Plugin from File*) carries the engine
as a wheel (`engine/*.whl` beside the plug-in's code) but no engine to run it. This module, which
the plug-ins vendor with the client (standard library only), makes one:

1. finds the system's Python 3.11 or newer that can make virtual environments;
2. makes a private virtual environment in the user's data folder (`engine_home()`);
3. installs the bundled wheel there with its dependencies from the package registry (pip, the
   CPU runtime for the learned model);
4. records the worker's command, and the models it has, in the plug-in's engine.json.

`progress(text, fraction)` is called with pip's own lines as they come (fraction None where a
line says nothing about how far it is); it may raise to stop, which stops pip. Failures raise SetupError with a message an artist can act on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

MIN_PYTHON = (3, 11)
# Lines pip prints for each package it fetches ("Collecting ...", or "Processing ..." for a file
# at hand): the engine has about this many, so the bar moves on a known scale until "Installing
# collected packages".
EXPECTED_PACKAGES = 14
PYTHON_NAMES = ("python3.13", "python3.12", "python3.11", "python3")
PROBE = "import sys, venv, ensurepip; print(sys.version_info[0], sys.version_info[1])"

Progress = Callable[[str, float | None], None]


class SetupError(Exception):
    """The engine could not be installed: the message says why and what to do."""


def engine_home() -> Path:
    """The folder for the engine's private environment, in the user's data folder."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "simnet-manipulate"


def bundled_wheel(plugin: Path) -> Path:
    """The engine wheel the plug-in's zip carries (plugin/engine/simnet_manipulate-*.whl)."""
    wheels = sorted((plugin / "engine").glob("simnet_manipulate-*.whl"))
    if not wheels:
        raise SetupError("This plug-in carries no engine to install: download the plug-in zip again, or install the "
                         "engine yourself (pip install simnet-manipulate, then simnet install-plugin).")
    return wheels[-1]


def find_python(names: tuple[str, ...] = PYTHON_NAMES) -> str:
    """The first Python on PATH that is 3.11 or newer and can make virtual environments (a host's
    own embedded Python is never one: its prefix is the host's)."""
    problems = []
    for name in names:
        found = shutil.which(name)
        if found is None:
            continue
        try:
            probe = subprocess.run([found, "-c", PROBE], check=False, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as error:
            problems.append(f"{found}: {error}")
            continue
        if probe.returncode != 0:
            problems.append(f"{found} cannot make virtual environments (on Debian and Ubuntu: sudo apt install python3-venv)")
            continue
        major, minor = (int(v) for v in probe.stdout.split())
        if (major, minor) >= MIN_PYTHON:
            return found
        problems.append(f"{found} is Python {major}.{minor}")
    raise SetupError("The engine needs Python 3.11 or newer, and none was found"
                     + (": " + "; ".join(problems) if problems else " on PATH")
                     + ". Install Python 3.11 or newer (python.org, or your system's packages), then try again.")


def install_engine(plugin: Path, progress: Progress | None = None, home: Path | None = None,
                   python: str | None = None, extras: str = "cpu") -> list[str]:
    """Install the engine the plug-in carries into a private environment and record it in the
    plug-in's engine.json. Returns the worker command."""
    report = progress or (lambda text, fraction: None)
    wheel = bundled_wheel(plugin)
    home = home or engine_home()
    python = python or find_python()
    environment = home / "engine"
    report(f"Making a Python environment in {environment}", 0.0)
    _run([python, "-m", "venv", "--clear", str(environment)], report, 0.0, 0.05)
    interpreter = environment / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    requirement = f"{wheel}[{extras}]" if extras else str(wheel)
    _run([str(interpreter), "-m", "pip", "install", "--progress-bar", "off", "--disable-pip-version-check",
          requirement], report, 0.05, 0.95)
    command = [str(interpreter), "-m", "engine", "worker"]
    report("Preparing the fill (compiled once, kept on disk)", 0.95)
    _run([str(interpreter), "-c", "from engine.fill import warm_up; warm_up()"], report, 0.95, 0.99)
    record(plugin / "engine.json", command, _models(interpreter))
    report("The engine is installed", 1.0)
    return command


def record(config: Path, command: list[str], models: dict) -> None:
    """Write the worker command and the models it has into the plug-in's engine.json."""
    config.write_text(json.dumps({"command": command, **models}, indent=1) + "\n")


def _models(interpreter: Path) -> dict:
    """The installed engine's models and default, asked of the engine itself."""
    ask = "import json; from engine.models import default_model, model_names; " \
          "print(json.dumps({'models': model_names(), 'default_model': default_model()[0]}))"
    answer = subprocess.run([str(interpreter), "-c", ask], check=False, capture_output=True, text=True, timeout=300)
    if answer.returncode != 0:
        raise SetupError("The engine was installed but does not start: " + _last_lines(answer.stderr))
    return json.loads(answer.stdout.strip().splitlines()[-1])


def pip_fraction(line: str, collected: int) -> tuple[int, float | None]:
    """How far a pip install is, from one line of its output: the packages collected so far and
    the fraction (0..1) the line shows, or None when it shows nothing new."""
    if line.startswith(("Collecting ", "Processing ")):  # one per package (Processing: a file at hand)
        collected += 1
        return collected, min(0.8, 0.8 * collected / EXPECTED_PACKAGES)
    if line.startswith("Installing collected packages"):
        return collected, 0.85
    if line.startswith("Successfully installed"):
        return collected, 1.0
    return collected, None


def _run(command: list[str], report: Progress, start: float, end: float) -> None:
    """Run `command`, reporting its lines between `start` and `end`; stop it if `report` raises."""
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    except OSError as error:
        raise SetupError(f"Could not run {command[0]}: {error}") from None
    lines: list[str] = []
    collected = 0
    try:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.strip()
            if not line:
                continue
            lines.append(line)
            collected, fraction = pip_fraction(line, collected)
            report(line, None if fraction is None else start + (end - start) * fraction)
        process.wait()
    except BaseException:
        process.kill()
        process.wait()
        raise
    if process.returncode != 0:
        raise SetupError(f"{Path(command[0]).name} {' '.join(command[1:3])} failed: " + _last_lines("\n".join(lines)))


def _last_lines(text: str, count: int = 4) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-count:]
    return " / ".join(kept) if kept else "(no output)"
