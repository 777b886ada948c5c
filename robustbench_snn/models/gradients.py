"""SNN gradient modes: how an attacker differentiates through spiking layers.

The forward pass never changes with the mode (logits are bit-identical); only the backward
rule of each spiking layer does:

- ``bptt``: backprop through the unrolled LIF recurrence with a surrogate derivative of the
  Heaviside step (atan, sigmoid, triangle, rectangle, exponential), at a chosen sharpness.
- ``bptr``: backprop through rate (Ding et al., NeurIPS 2022): the layer is a rate unit,
  ``dL/dx_t = dL/ds_t * 1[r > 0]`` with ``r`` the neuron's firing rate, and no recursion
  through membrane or reset.
- ``rga``: rate gradient approximation (Bu et al., CVPR 2023): ``dL/dx_t = dL/ds_t * g``,
  with ``g`` the slope of a piecewise-linear model of the LIF rate as a function of the
  time-averaged input, set by the leak and the threshold (below).
- ``act``: gradients of the rate ANN with the same weights (each spiking nonlinearity replaced
  by ReLU of its time-averaged input), attached to the SNN's logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from spikingjelly.activation_based import surrogate

from robustbench_snn.errors import UserError, unknown_name

# The surrogate derivatives of the Heaviside step, by the names the literature uses.
SURROGATES: dict[str, type[surrogate.SurrogateFunctionBase]] = {
    "atan": surrogate.ATan,
    "sigmoid": surrogate.Sigmoid,
    "triangle": surrogate.PiecewiseQuadratic,  # its derivative is the triangle max(0, a - a^2 |x|)
    "rectangle": surrogate.Rect,
    "exponential": surrogate.PiecewiseExp,
}

GRADIENT_MODES = ("bptt", "bptr", "rga", "act")

# RGA's rate model: a small slope below the firing knee keeps gradients alive where a neuron
# is silent, and the ramp above it reaches rate 1 at RGA_EXTENSION thresholds past the knee.
RGA_SILENT_SLOPE = 0.2
RGA_EXTENSION = 1.0

# Default surrogate sharpness when a mode names a surrogate without one (spikingjelly's defaults).
DEFAULT_ALPHA = {"atan": 2.0, "sigmoid": 4.0, "triangle": 1.0, "rectangle": 1.0, "exponential": 1.0}


@dataclass(frozen=True)
class GradientMode:
    """An attacker's choice of SNN gradient; ``surrogate`` and ``alpha`` apply to ``bptt``."""

    mode: str = "bptt"
    surrogate: str | None = None
    alpha: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in GRADIENT_MODES:
            raise UserError(unknown_name("gradient mode", self.mode, GRADIENT_MODES))
        if self.surrogate is not None and self.surrogate not in SURROGATES:
            raise UserError(unknown_name("surrogate", self.surrogate, SURROGATES))
        if self.alpha is not None and self.alpha <= 0:
            raise UserError(f"surrogate sharpness must be > 0, got {self.alpha}")

    def label(self) -> str:
        if self.mode != "bptt" or self.surrogate is None:
            return self.mode
        return f"bptt-{self.surrogate}" + (f"@{self.alpha:g}" if self.alpha is not None else "")


def bptr_slope(currents: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
    """``1[r > 0]`` per neuron, shared by all steps (inputs are ``[T, B, ...]``)."""
    return (spikes.mean(0, keepdim=True) > 0).to(currents.dtype)


def rga_slope(currents: torch.Tensor, tau: float, threshold: float) -> torch.Tensor:
    """RGA's slope of the LIF rate with respect to each step's input, shared by all steps.

    With spikingjelly's decay-input LIF, ``u_t = leak * u_{t-1} + x_t / tau`` and
    ``leak = 1 - 1/tau``. In units of the effective drive ``z = mean_t(x_t) / (tau * threshold)``
    the neuron is silent below ``1 - leak`` (slope RGA_SILENT_SLOPE there), then its rate rises
    linearly to 1 at ``z = 1 + RGA_EXTENSION``. The chain rule adds the factor ``1/(tau * threshold)``.
    """
    leak = 1.0 - 1.0 / tau
    drive = currents.mean(0, keepdim=True) / (tau * threshold)
    knee = 1.0 - leak
    ramp = (1.0 - RGA_SILENT_SLOPE * knee) / (1.0 + RGA_EXTENSION - knee)
    slope = torch.where(
        (drive >= knee) & (drive <= 1.0 + RGA_EXTENSION),
        torch.full_like(drive, ramp),
        torch.where((drive >= 0) & (drive < knee), torch.full_like(drive, RGA_SILENT_SLOPE), torch.zeros_like(drive)),
    )
    return slope / (tau * threshold)


def with_local_gradient(values: torch.Tensor, inputs: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    """``values`` in the forward pass; ``d values / d inputs = slope`` (elementwise) in the backward."""
    linear = inputs * slope.detach()
    return values.detach() + (linear - linear.detach())
