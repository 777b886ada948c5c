"""Threshold-adapting LIF neurons (TA-LIF) of HoSNN (Geng & Li, arXiv 2308.10373), our reading of
the paper and its authors' code.

Each neuron's threshold moves with its own membrane potential: at every step
``threshold_t = threshold_{t-1} + rate * (h_t - target_t)``, where ``h_t`` is the charged
potential, ``target_t`` the neuron's "neural dynamic signature" (its mean potential at step t on
clean training data, recorded from a clean-trained LIF network and then fixed) and ``rate`` a
learnable per-neuron adaptation rate, initialised to ``1 / tau_v`` and kept non-negative. An input
that drives a neuron above its usual potential raises its threshold, which damps the spread of a
perturbation. The neuron spikes when ``h_t`` reaches the threshold and its potential resets; the
threshold does not. The charge is the zoo's LIF (spikingjelly's with ``decay_input``), so with a
zero rate the layer is exactly that LIF, and a clean-trained zoo SNN initialises its weights.

Every gradient mode applies, each at the neuron's own moving threshold (`EagerActivation`; under
BPTT, PDSG and ASSG the gradient also flows through the threshold's dependence on past
potentials). The layer always runs eagerly: the compiled kernel implements the fixed-threshold LIF only.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

from robustbench_snn.models.neurons import EagerActivation, NeuronConfig


class AdaptiveThresholdActivation(LazyModuleMixin, EagerActivation):
    """A layer of TA-LIF neurons; its per-neuron ``rate`` and ``target`` take their shape from the first input."""

    def __init__(self, timesteps: int, config: NeuronConfig) -> None:
        super().__init__(timesteps, config)
        self.rate = UninitializedParameter()
        self.register_buffer("target", UninitializedBuffer())

    def initialize_parameters(self, currents: torch.Tensor) -> None:
        """Shape the per-neuron state for inputs ``[T * B, *features]``: rate ``1 / tau_v``, a zero
        target (unless a checkpoint's state was loaded first)."""
        if not self.has_uninitialized_params():
            return
        features = currents.shape[1:]
        with torch.no_grad():
            self.rate.materialize(features, device=currents.device, dtype=currents.dtype)
            self.rate.fill_(1.0 / self.config.params["threshold_tau"])
            self.target.materialize((self.timesteps, *features), device=currents.device, dtype=currents.dtype)
            self.target.zero_()

    nir_refusal = "NIR's LIF fires at a fixed threshold, and this threshold moves with the potential"

    def extra_repr(self) -> str:
        return f"adaptive threshold, tau_v={self.config.params['threshold_tau']}"

    def _next_threshold(self, threshold: torch.Tensor, charged: torch.Tensor, step: int) -> torch.Tensor:
        return threshold + self.rate * (charged - self.target[step])

    def keep_rate_non_negative(self) -> None:
        """Clamp the adaptation rates at zero after an optimiser step, as the authors do."""
        with torch.no_grad():
            self.rate.clamp_(min=0)


def recorded_potentials(layer: nn.Module, currents: torch.Tensor) -> torch.Tensor:
    """The charged potentials ``[T, B, *features]`` of a fixed-threshold LIF ``layer``
    (`SpikingActivation`) for its inputs ``[T * B, *features]``: what a signature averages."""
    from robustbench_snn.models.compiled_lif import potentials

    config = layer.config
    sequence = currents.reshape(layer.timesteps, -1, *currents.shape[1:])
    return potentials(sequence, layer.timesteps, config.tau, config.v_threshold, config.v_reset, False)
