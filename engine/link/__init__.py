"""The link between the plug-ins and the engine worker: the framed protocol (protocol) and the
client (client). Standard library only; `simnet install-plugin` copies this folder into each
plug-in whole."""
