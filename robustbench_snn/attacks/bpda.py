"""BPDA (Athalye et al. 2018) for quantising defences: a straight-through gradient for rounding and sign."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

# Operations whose derivative is zero almost everywhere: the usual input quantisers of a defence.
QUANTIZERS = frozenset(
    {
        torch.round,
        torch.floor,
        torch.ceil,
        torch.trunc,
        torch.sign,
        torch.Tensor.round,
        torch.Tensor.floor,
        torch.Tensor.ceil,
        torch.Tensor.trunc,
        torch.Tensor.sign,
    }
)


class StraightThroughQuantizers(TorchFunctionMode):
    """BPDA (Athalye et al. 2018) for quantising defences: inside this mode, rounding, floor, ceil,
    trunc and sign keep their forward values but pass the gradient through as the identity, so an
    attack sees the gradient of the network around the quantiser. ``used`` counts the calls."""

    def __init__(self) -> None:
        super().__init__()
        self.used = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        output = func(*args, **kwargs)
        if func in QUANTIZERS and isinstance(args[0], torch.Tensor) and args[0].requires_grad and not kwargs.get("out"):
            self.used += 1
            source = args[0]
            return source + (output - source).detach()
        return output


def uses_quantizers(model: nn.Module, images: torch.Tensor) -> bool:
    """Whether a forward of ``model`` on ``images`` differentiates through a quantising operation."""
    mode = StraightThroughQuantizers()
    with torch.enable_grad(), mode:
        model(images.detach().requires_grad_(True))
    return mode.used > 0


@contextmanager
def bpda_context(enabled: bool) -> Iterator[None]:
    """`StraightThroughQuantizers` when ``enabled``."""
    if not enabled:
        yield
        return
    with StraightThroughQuantizers():
        yield
