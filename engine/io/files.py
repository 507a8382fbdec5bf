"""Writing files atomically, and recognising what an interrupted write left behind.

Every file the engine writes (images, .ora files, batch reports, checkpoints) is written to a
temporary file beside its destination and renamed into place, so a failed or killed run never
leaves a partial output. A kill -9 between the two steps leaves the temporary; its name,
`.NAME.simnet-XXXXXXXX.tmp`, says which output it was for, so `simnet batch --resume` can remove
exactly our own leftovers and nothing else.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

TEMPORARY_INFIX = ".simnet-"
TEMPORARY_SUFFIX = ".tmp"
# mkstemp's random part is 8 characters of letters, digits and underscores.
_TEMPORARY = re.compile(r"\.(?P<name>.+)" + re.escape(TEMPORARY_INFIX) + r"[A-Za-z0-9_]{8}" + re.escape(TEMPORARY_SUFFIX))


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None], mode: int = 0o666) -> None:
    """Call `write(file)` on a temporary file beside `path`, then rename it to `path`. The file
    gets `mode` less the umask (mkstemp would leave it private). Nothing is left on failure."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}{TEMPORARY_INFIX}", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
        os.chmod(temporary, mode & ~current_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> None:
    def write(out: BinaryIO) -> None:
        out.write(data)

    write_atomically(path, write)


def temporary_target(name: str) -> str | None:
    """The output name a temporary of ours was for (`.a.png.simnet-1x2y3z4w.tmp` -> `a.png`),
    or None for any other name."""
    match = _TEMPORARY.fullmatch(name)
    return match["name"] if match else None


def remove_stale_temporaries(outputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Remove the temporaries that interrupted writes of `outputs` left beside them; returns
    what was removed. Files that are not our temporaries of one of these outputs stay."""
    wanted: dict[Path, set[str]] = {}
    for output in outputs:
        output = Path(output)
        wanted.setdefault(output.parent, set()).add(output.name)
    removed = []
    for folder, names in wanted.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if temporary_target(entry.name) in names and entry.is_file(follow_symlinks=False):
                Path(entry.path).unlink(missing_ok=True)
                removed.append(Path(entry.path))
    return removed
