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

Every gradient mode applies, each at the neuron's own moving threshold: BPTT through any surrogate
and PDSG and ASSG through the whole recurrence (the gradient also flows through the threshold's
dependence on past potentials), HART at ``h - threshold`` of each step, RGA's rate model at each
neuron's threshold averaged over the steps, BPTR and the rate ANN (act) as for LIF. The layer
always runs eagerly: the compiled kernel implements the fixed-threshold LIF only.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

from robustbench_snn.models.gradients import assg_slope, pdsg_slope, time_averaged, triangle_slope, with_local_gradient
from robustbench_snn.models.neurons import NeuronConfig, SpikingActivation


class AdaptiveThresholdActivation(LazyModuleMixin, SpikingActivation):
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
            self.rate.fill_(1.0 / self.config.threshold_tau)
            self.target.materialize((self.timesteps, *features), device=currents.device, dtype=currents.dtype)
            self.target.zero_()

    @property
    def compiled(self) -> bool:
        """Never: the compiled kernel implements the fixed-threshold LIF only (`compile_lif` leaves this layer eager)."""
        return False

    @compiled.setter
    def compiled(self, enabled: bool) -> None:
        pass

    def extra_repr(self) -> str:
        return f"adaptive threshold, tau_v={self.config.threshold_tau}"

    def constant_input(self, current: torch.Tensor) -> torch.Tensor:
        return self(current.unsqueeze(0).expand(self.timesteps, *current.shape).flatten(0, 1))

    def _run(self, sequence: torch.Tensor, fire: Callable[[int, torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The recurrence over ``sequence [T, B, ...]``, firing by ``fire(step, h - threshold)``:
        the spikes, the charged potentials and the thresholds, each ``[T, B, ...]``."""
        config = self.config
        reset_to = 0.0 if config.v_reset is None else config.v_reset
        potential = torch.full_like(sequence[0], reset_to)
        threshold = torch.full_like(sequence[0], config.v_threshold)
        spikes, charges, thresholds = [], [], []
        for step in range(self.timesteps):
            charged = potential + (sequence[step] - (potential - reset_to)) / config.tau
            threshold = threshold + self.rate * (charged - self.target[step])
            spike = fire(step, charged - threshold)
            reset = spike.detach() if config.detach_reset else spike
            if config.v_reset is None:
                potential = charged - reset * threshold
            else:
                potential = charged * (1 - reset) + config.v_reset * reset
            spikes.append(spike)
            charges.append(charged)
            thresholds.append(threshold)
        return torch.stack(spikes), torch.stack(charges), torch.stack(thresholds)

    def _spikes(self, sequence: torch.Tensor) -> torch.Tensor:
        surrogate = self.lif.surrogate_function
        return self._run(sequence, lambda step, shifted: surrogate(shifted))[0]

    def _shifted(self, sequence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The spikes and ``h - threshold`` at every step, without gradient."""
        with torch.no_grad():
            spikes, charges, thresholds = self._run(sequence, lambda step, shifted: (shifted >= 0).to(shifted.dtype))
        return spikes, charges - thresholds

    def _rate_threshold(self, sequence: torch.Tensor) -> torch.Tensor:
        """Each neuron's threshold averaged over the steps: the fixed threshold of RGA's rate model."""
        with torch.no_grad():
            return self._run(sequence, lambda step, shifted: (shifted >= 0).to(shifted.dtype))[2].mean(0, keepdim=True)

    def _adaptive_surrogate(self, sequence: torch.Tensor) -> torch.Tensor:
        """HART, PDSG or ASSG at this neuron's own ``h - threshold``; PDSG and ASSG by BPTT through
        the whole recurrence, threshold included, with their surrogate slope per step."""
        mode = self.gradient.mode
        spikes, shifted = self._shifted(sequence)
        if mode == "hart":
            slope = triangle_slope(shifted, self.gradient.parameter) / self.config.tau
            return with_local_gradient(spikes, time_averaged(sequence), slope)
        slope = pdsg_slope(shifted) if mode == "pdsg" else assg_slope(shifted, self._sharpness_moments(shifted), self.gradient.parameter)
        step_fire = (shifted >= 0).to(sequence.dtype)
        return self._run(sequence, lambda step, shifted_now: with_local_gradient(step_fire[step], shifted_now, slope[step]))[0]

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
