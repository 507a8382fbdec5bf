"""The engine worker this plug-in talks to, as recorded by `simnet install-plugin`."""

import json
from pathlib import Path

from .link.client import Client

CONFIG = Path(__file__).resolve().parent / "engine.json"
_client = None


def engine_client():
    """One worker per Krita session, started on first use (and again after a crash)."""
    global _client  # noqa: PLW0603 (one worker per Krita session)
    if _client is None:
        settings = json.loads(CONFIG.read_text())
        _client = Client(settings["command"])
    return _client


def close():
    if _client is not None:
        _client.close()
