"""Writing files so that a crash or a concurrent reader never sees half of one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; it replaces ``path`` in one step when the block
    ends without error (otherwise ``path`` is left as it was and the temporary file removed)."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.part{os.getpid()}")
    try:
        yield partial
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


@contextmanager
def building(folder: str | os.PathLike) -> Iterator[Path]:
    """A fresh temporary folder beside ``folder`` to build into; when the block ends without error
    its files are moved into ``folder`` (renames, which need no space), replacing those of the same
    name; otherwise nothing of it is left. A build that fails (a full disk) leaves ``folder`` as it was."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        yield partial
        for source in sorted(partial.rglob("*")):
            if source.is_file():
                target = folder / source.relative_to(partial)
                target.parent.mkdir(parents=True, exist_ok=True)
                source.replace(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
