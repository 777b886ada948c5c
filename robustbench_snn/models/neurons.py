"""Spiking neurons: spikingjelly's multi-step LIF neuron behind the activation slot of a backbone.

Backbones run their stateless layers on ``[T * B, ...]`` tensors; `SpikingActivation`
regroups them as ``[T, B, ...]`` for the LIF recurrence and flattens the spikes back. An ANN
twin fills the same slot with ``nn.ReLU``, so both share one architecture definition.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from spikingjelly.activation_based import neuron, surrogate
from torch import nn

from robustbench_snn.errors import UserError

# The surrogate derivatives of the Heaviside step, by the names the literature uses.
SURROGATES: dict[str, type[surrogate.SurrogateFunctionBase]] = {
    "atan": surrogate.ATan,
    "sigmoid": surrogate.Sigmoid,
    "triangle": surrogate.PiecewiseQuadratic,  # its derivative is the triangle max(0, a - a^2 |x|)
    "rectangle": surrogate.Rect,
    "exponential": surrogate.PiecewiseExp,
}


@dataclass(frozen=True)
class NeuronConfig:
    """LIF parameters (spikingjelly's ``LIFNode`` with ``decay_input=True``) and the training surrogate."""

    tau: float = 2.0
    v_threshold: float = 1.0
    v_reset: float | None = 0.0
    surrogate: str = "atan"
    surrogate_alpha: float = 2.0
    detach_reset: bool = False

    def __post_init__(self) -> None:
        if self.surrogate not in SURROGATES:
            raise UserError(f"unknown surrogate {self.surrogate!r}; choose one of {', '.join(SURROGATES)}")
        if self.tau <= 1.0:
            raise UserError(f"LIF tau must be > 1, got {self.tau}")

    def as_dict(self) -> dict:
        return asdict(self)


class SpikingActivation(nn.Module):
    """A layer of LIF neurons run over ``timesteps`` steps on a time-flattened batch."""

    def __init__(self, timesteps: int, config: NeuronConfig) -> None:
        super().__init__()
        self.timesteps = timesteps
        self.lif = neuron.LIFNode(
            tau=config.tau,
            decay_input=True,
            v_threshold=config.v_threshold,
            v_reset=config.v_reset,
            surrogate_function=SURROGATES[config.surrogate](alpha=config.surrogate_alpha),
            detach_reset=config.detach_reset,
            step_mode="m",
        )

    def forward(self, currents: torch.Tensor) -> torch.Tensor:
        sequence = currents.reshape(self.timesteps, -1, *currents.shape[1:])
        return self.lif(sequence).reshape(currents.shape)
