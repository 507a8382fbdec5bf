"""The engine worker this plug-in talks to, as recorded in engine.json (by `simnet
install-plugin`, or by the plug-in's own "Install engine...")."""

import json
from pathlib import Path

from .link import engine_setup
from .link.client import Client

PLUGIN = Path(__file__).resolve().parent
CONFIG = PLUGIN / "engine.json"
_client = None


def engine_client():
    """One worker per Krita session, started on first use (and again after a crash)."""
    global _client  # noqa: PLW0603 (one worker per Krita session)
    if _client is None:
        try:
            settings = json.loads(CONFIG.read_text())
        except (OSError, ValueError):
            settings = {"command": [str(PLUGIN / "no-engine-installed")]}  # starting it says the engine is missing
        _client = Client(settings["command"])
    return _client


def install(progress=None):
    """Install the engine this plug-in carries into a private environment (engine_setup) and use
    it from the next call on. `progress(text, fraction)` gets pip's lines (fraction -1 where a
    line does not say how far it is) and may raise to stop. Any thread."""
    global _client  # noqa: PLW0603 (one worker per Krita session)
    close()
    _client = None
    report = (lambda text, fraction: progress(text, -1.0 if fraction is None else fraction)) if progress else None
    return engine_setup.install_engine(PLUGIN, report)


def close():
    if _client is not None:
        _client.close()
