"""Noisy LIF neurons of TGO (Wang et al., ICLR 2026, arXiv 2602.20548), after the noisy spiking
neurons of Ma et al. (NSNN, Patterns 2023) that it builds on: our reading of both papers.

At every firing decision the neuron's potential carries Gaussian noise, ``s_t = H(h_t - threshold
+ sigma * e_t)`` with ``e_t ~ N(0, 1)`` drawn per neuron, step and image, so it fires with
probability ``Phi((h_t - threshold) / sigma)``: a neuron near its threshold fires at random rather
than flipping on a small push. The charge and reset are the zoo's LIF. The randomness is inside
the network, not in its coding, so a model with these neurons is stochastic whatever its
encoder: the runner attacks it with EOT, decides it over several draws and seeds the layers'
generators (`Classifier.seed`), and its deterministic relative (the attacks "on the expectation")
is the same network with the noise at its mean, zero.

Gradient: every mode at the noisy shifted potential of each step (`EagerActivation`); the noise
is a reparameterised draw, so BPTT through a surrogate is a single-draw estimate of the gradient
of the firing probability that EOT averages (with a Gaussian surrogate of width sigma, NSNN's
noise-driven learning rule in expectation). The layer runs eagerly; the energy counter counts its
spikes like any LIF layer's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch

from robustbench_snn.models.neurons import EagerActivation, NeuronConfig


class NoisyActivation(EagerActivation):
    """A layer of noisy LIF neurons with its own generator (``seed`` restarts it)."""

    stochastic = True

    def __init__(self, timesteps: int, config: NeuronConfig, seed: int = 0) -> None:
        super().__init__(timesteps, config)
        self.generator = torch.Generator().manual_seed(seed)
        self.noise_free = False
        self._noise: torch.Tensor | None = None

    def seed(self, seed: int) -> None:
        """Restart the layer's noise stream at ``seed``."""
        self.generator.manual_seed(seed)

    nir_refusal = "NIR's LIF fires deterministically, and these neurons fire on their potential plus noise"

    def extra_repr(self) -> str:
        return f"noisy firing, sigma={self.config.params['noise_sigma']}"

    def _firing_noise(self, step: int) -> torch.Tensor | float:
        return 0.0 if self._noise is None else self._noise[step]

    def forward(self, currents: torch.Tensor) -> torch.Tensor:
        # One draw per forward, shared by every pass a gradient mode makes over the recurrence.
        if not self.noise_free and not self.rate_mode:
            shape = (self.timesteps, currents.shape[0] // self.timesteps, *currents.shape[1:])
            draw = torch.randn(shape, generator=self.generator, device=self.generator.device)
            self._noise = self.config.params["noise_sigma"] * draw.to(currents)
        try:
            return super().forward(currents)
        finally:
            self._noise = None


@contextmanager
def without_firing_noise(layers: Iterable[torch.nn.Module]) -> Iterator[None]:
    """Inside the block, the noisy layers among ``layers`` fire on their noise-free potentials."""
    noisy = [layer for layer in layers if isinstance(layer, NoisyActivation)]
    for layer in noisy:
        layer.noise_free = True
    try:
        yield
    finally:
        for layer in noisy:
            layer.noise_free = False
