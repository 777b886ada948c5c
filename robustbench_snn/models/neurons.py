"""Spiking neurons: spikingjelly's multi-step LIF neuron behind the activation slot of a backbone.

Backbones run their stateless layers on ``[T * B, ...]`` tensors; `SpikingActivation`
regroups them as ``[T, B, ...]`` for the LIF recurrence and flattens the spikes back. An ANN
twin fills the same slot with ``nn.ReLU``, so both share one architecture definition.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from spikingjelly.activation_based import neuron
from torch import nn

from robustbench_snn.errors import UserError, unknown_name
from robustbench_snn.models.compiled_lif import CompiledLIF
from robustbench_snn.models.gradients import (
    DEFAULT_ALPHA,
    SURROGATES,
    GradientMode,
    bptr_slope,
    rga_slope,
    with_local_gradient,
)


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
            raise UserError(unknown_name("surrogate", self.surrogate, SURROGATES))
        if self.tau <= 1.0:
            raise UserError(f"LIF tau must be > 1, got {self.tau}")

    def as_dict(self) -> dict:
        return asdict(self)


class SpikingActivation(nn.Module):
    """A layer of LIF neurons run over ``timesteps`` steps on a time-flattened batch.

    ``set_gradient`` picks the backward rule attacks differentiate with (see
    `robustbench_snn.models.gradients`); ``rate_mode`` turns the layer into the rate ANN's
    ReLU of the time-averaged input, used for the ``act`` gradient; ``compiled`` runs the
    recurrence through the compiled kernel (`robustbench_snn.models.compiled_lif`) instead of
    spikingjelly's, with the same spikes.
    """

    def __init__(self, timesteps: int, config: NeuronConfig) -> None:
        super().__init__()
        self.timesteps = timesteps
        self.config = config
        self.gradient = GradientMode()
        self.rate_mode = False
        self.lif = neuron.LIFNode(
            tau=config.tau,
            decay_input=True,
            v_threshold=config.v_threshold,
            v_reset=config.v_reset,
            surrogate_function=SURROGATES[config.surrogate](alpha=config.surrogate_alpha),
            detach_reset=config.detach_reset,
            step_mode="m",
        )
        self.training_surrogate = self.lif.surrogate_function
        self.surrogate = (config.surrogate, config.surrogate_alpha)
        self.compiled = False

    def set_gradient(self, gradient: GradientMode) -> None:
        self.gradient = gradient
        if gradient.mode == "bptt" and gradient.surrogate is not None:
            alpha = gradient.alpha if gradient.alpha is not None else DEFAULT_ALPHA[gradient.surrogate]
            self.lif.surrogate_function = SURROGATES[gradient.surrogate](alpha=alpha)
            self.surrogate = (gradient.surrogate, alpha)
        else:
            self.lif.surrogate_function = self.training_surrogate
            self.surrogate = (self.config.surrogate, self.config.surrogate_alpha)

    def _spikes(self, sequence: torch.Tensor) -> torch.Tensor:
        """The layer's spikes, differentiable by BPTT through the current surrogate."""
        if not self.compiled:
            return self.lif(sequence)
        config = self.config
        return CompiledLIF.apply(
            sequence, self.timesteps, config.tau, config.v_threshold, config.v_reset, *self.surrogate, config.detach_reset
        )

    def constant_input(self, current: torch.Tensor) -> torch.Tensor:
        """The spikes ``[T * B, ...]`` for a current ``[B, ...]`` that is the same at every step.

        The compiled kernel takes it once; other paths see it repeated over T.
        """
        if self.compiled and not self.rate_mode and (self.gradient.mode == "bptt" or not torch.is_grad_enabled()):
            return self._spikes(current.unsqueeze(0)).flatten(0, 1)
        return self(current.unsqueeze(0).expand(self.timesteps, *current.shape).flatten(0, 1))

    def forward(self, currents: torch.Tensor) -> torch.Tensor:
        sequence = currents.reshape(self.timesteps, -1, *currents.shape[1:])
        if self.rate_mode:
            output = torch.relu(sequence.mean(0, keepdim=True)).expand_as(sequence)
        elif self.gradient.mode in ("bptt", "act") or not torch.is_grad_enabled():
            output = self._spikes(sequence)
        else:
            with torch.no_grad():
                spikes = self._spikes(sequence)
            if self.gradient.mode == "bptr":
                slope = bptr_slope(sequence, spikes)
            else:
                slope = rga_slope(sequence, self.config.tau, self.config.v_threshold)
            output = with_local_gradient(spikes, sequence, slope)
        return output.reshape(currents.shape)
