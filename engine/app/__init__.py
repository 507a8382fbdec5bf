"""What a person or a host runs: the `simnet` command line (cli), the plug-ins' worker, batch
runs, doctor, plug-in install and the explain sheet. Everything here sits on top of
engine.pipeline; nothing below imports it."""
