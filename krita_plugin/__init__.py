"""The Krita plug-in's files. `simnet install-plugin krita` copies them (with the engine's
client, engine/link/) into Krita's pykrita folder; nothing here is imported outside Krita."""
