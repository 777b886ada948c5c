"""Which device to run on: a name checked against what this machine's torch can use."""

from __future__ import annotations

import torch

from robustbench_snn.errors import UserError


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
