"""Evolutionary-leak neurons of FEEL-SNN (Xu et al., NeurIPS 2024), our reading of the paper and
its authors' code (github MengtingXu1203/FEEL_SNN, read, not copied).

Each neuron has its own leak factor at every time step, learned with the weights: the potential
charges as ``h_t = k_t * u_{t-1} + x_t`` (the authors' integrate-and-fire form: the input is not
scaled by the leak), fires at the threshold and resets; ``k`` starts at ``leak_init`` (the authors
start at 1, no leak) and is free afterwards, so training "evolves" how much each neuron forgets at
each step. The layer's leak replaces the LIF's ``tau`` in the charge; the config's ``tau`` still
sets the rate models of RGA and HART, whose gradients are an attacker's approximations anyway.

Every gradient mode applies (`EagerActivation`), BPTT, PDSG and ASSG through the learned leaks.
The layer runs eagerly: the compiled kernel implements the fixed-leak LIF only.
"""

from __future__ import annotations

import torch
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedParameter

from robustbench_snn.models.neurons import EagerActivation, NeuronConfig


class EvolvingLeakActivation(LazyModuleMixin, EagerActivation):
    """A layer of neurons with a learned leak factor per step; ``leak [T, *features]`` takes its shape from the first input."""

    def __init__(self, timesteps: int, config: NeuronConfig) -> None:
        super().__init__(timesteps, config)
        self.leak = UninitializedParameter()

    def initialize_parameters(self, currents: torch.Tensor) -> None:
        """Shape the leaks for inputs ``[T * B, *features]``, all ``leak_init`` (unless a checkpoint's were loaded first)."""
        if not self.has_uninitialized_params():
            return
        with torch.no_grad():
            self.leak.materialize((self.timesteps, *currents.shape[1:]), device=currents.device, dtype=currents.dtype)
            self.leak.fill_(self.config.params["leak_init"])

    nir_refusal = "NIR's LIF has one time constant, and these neurons learn a leak per step"

    def extra_repr(self) -> str:
        return f"learned leak per step, from {self.config.params['leak_init']}"

    def _charge(self, potential: torch.Tensor, current: torch.Tensor, step: int) -> torch.Tensor:
        return self.leak[step] * potential + current
