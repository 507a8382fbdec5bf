"""The GIMP 3 plug-in (installed by `simnet install-plugin gimp`; GIMP runs it with its own Python)."""
