"""The process's memory settings: keeping large freed buffers for reuse (no torch import, so the
command line can apply them before any command loads torch).

An attack step allocates and frees activations of tens of MB. glibc serves blocks that large
with mmap and returns them to the OS on free, so every step pays page faults again to touch
fresh memory (measured here: about 1.3x the time of a PGD step on the default RSC model).
Raising the mmap and trim thresholds keeps them in the heap, where the next step reuses them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_BYTES = 1 << 30


def keep_freed_memory() -> bool:
    """Ask glibc to serve blocks under 1 GiB from the heap and not to trim it; False where not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        applied = libc.mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2 * _KEEP_BYTES) == 1
    except (OSError, AttributeError):
        return False
    logger.debug("glibc mmap/trim thresholds raised: %s", applied)
    return applied
