"""The process's compute settings: which device to run on, and keeping large freed buffers for reuse.

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

import torch

from robustbench_snn.errors import UserError

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


def resolve_device(name: str | torch.device) -> torch.device:
    """``name`` as a torch device this machine has, or a `UserError` saying why not."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UserError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {name!r}: this machine has no CUDA GPU that torch can use; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif device.type != "cpu":
        raise UserError(f"device {name!r} is not supported; use cpu or cuda")
    return device
