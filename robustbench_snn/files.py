"""Writing files so that a crash or a concurrent reader never sees half of one."""

from __future__ import annotations

import os
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
