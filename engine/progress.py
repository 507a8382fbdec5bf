"""Progress on stderr for `simnet manipulate`, `simnet batch` and `simnet train`: tqdm's bars.

On a terminal a bar is redrawn in place a few times a second. In a log (stderr is not a
terminal) each redraw is a line of its own, at most one every LOG_INTERVAL seconds, and one more
when the bar ends: a few lines per stage instead of one per percent.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

LOG_INTERVAL = 10.0  # seconds between a log's progress lines
TERMINAL_INTERVAL = 0.2


class _LogLines:
    """tqdm's output for a stream that is not a terminal: each redraw on a line of its own
    (tqdm starts a redraw with a carriage return, which a log shows as one endless line)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").rstrip("\n")
        if text.strip():
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(total: float, description: str, unit: str, quiet: bool, delay: float = 0.0, initial: float = 0,
                 bar_format: str | None = None) -> tqdm:
    """A bar on stderr (nothing with `quiet`), shown only once it has run for `delay` seconds."""
    terminal = sys.stderr.isatty()
    return tqdm(total=total, desc=description, unit=unit, initial=initial, disable=quiet, delay=delay, leave=True,
                file=sys.stderr if terminal else _LogLines(sys.stderr), dynamic_ncols=terminal, ascii=not terminal,
                mininterval=TERMINAL_INTERVAL if terminal else LOG_INTERVAL, bar_format=bar_format)


class StageProgress:
    """`progress(stage, fraction)` as the engine reports it, as one bar per stage (motion,
    transport, writing), each shown once the command has run for `after` seconds."""

    FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}"

    def __init__(self, quiet: bool, after: float, started: float):
        self.quiet, self.after, self.started = quiet, after, started
        self.stage: str | None = None
        self.bar: tqdm | None = None

    def __call__(self, stage: str, fraction: float) -> None:
        if stage != self.stage:
            self.done()
            self.stage = stage
            waited = time.monotonic() - self.started
            self.bar = progress_bar(100, stage, "%", self.quiet, delay=max(0.0, self.after - waited), bar_format=self.FORMAT)
        assert self.bar is not None
        target = round(min(max(fraction, 0.0), 1.0) * 100)
        if target > self.bar.n:
            self.bar.update(target - self.bar.n)

    def done(self) -> None:
        """The current stage is over (the next one began, or the command ended)."""
        if self.bar is not None:
            self.bar.update(self.bar.total - self.bar.n)
            self.bar.close()
            self.bar = None
