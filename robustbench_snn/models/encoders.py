"""Input encoders: turn an image batch ``[B, ...]`` in [0, 1] into a sequence ``[T, B, ...]``.

Each encoder documents its gradient with respect to the image, because attacks differentiate
through it. Stochastic encoders draw fresh randomness at every forward from their own
``torch.Generator``, so a seed makes a run repeatable without touching the global RNG.
"""

from __future__ import annotations

import torch
from torch import nn

from robustbench_snn.errors import UserError


class Encoder(nn.Module):
    """Base class. ``stochastic`` tells attacks whether EOT is needed.

    ``adaptive_attacks`` are the attacks designed for this coding: member fields that the
    ``reliable`` protocol adds, each over its first white-box member (so they share its eps, norm
    and EOT). A new encoder declares its own here.
    """

    stochastic = False
    adaptive_attacks: tuple[dict, ...] = ()

    def expectation(self) -> "Encoder | None":
        """A deterministic encoder with this one's mean input, for attacks through the expectation
        of the randomness (None for a deterministic encoder)."""
        return None

    @property
    def repeats_frame(self) -> bool:
        """Whether every step sees the same frame, so a model may compute its first layers once."""
        return False

    def frame(self, images: torch.Tensor) -> torch.Tensor:
        """The one frame ``[B, ...]`` repeated over all steps (only when ``repeats_frame``)."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor, timesteps: int) -> torch.Tensor:
        raise NotImplementedError


class DirectEncoder(Encoder):
    """Direct coding: ``x_t = x`` at every step. Gradient: the sum over steps (identity per step)."""

    repeats_frame = True

    def frame(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def forward(self, images: torch.Tensor, timesteps: int) -> torch.Tensor:
        return images.unsqueeze(0).expand(timesteps, *images.shape)


class StochasticEncoder(Encoder):
    """An encoder that owns a generator; ``seed`` re-seeds it for a repeatable sequence of draws.

    Its noise has mean zero around ``x`` (Bernoulli(x) for Poisson, x + e for RSC), so direct coding
    of ``x`` is its expectation: the same weights fed the mean input are a deterministic relative
    whose clean gradients transfer to the stochastic model (a BPDA-style substitute, Athalye et
    al. 2018). Its adaptive attacks are four PGD-20 transfers from that relative with different
    surrogates and losses (measured on the Poisson SNN: the four together fooled 12 of the 42
    samples that `reliable` version 1 counted robust on 200 test images, where PGD with EOT 8 on
    the model itself fooled none; each takes about a second).
    """

    stochastic = True
    adaptive_attacks = (
        {"attack": "transfer", "source": "expectation", "steps": 20},
        {"attack": "transfer", "source": "expectation", "steps": 20, "loss": "cw"},
        {"attack": "transfer", "source": "expectation", "steps": 20, "surrogate": "sigmoid", "loss": "cw"},
        {"attack": "transfer", "source": "expectation", "steps": 20, "surrogate": "triangle"},
    )

    def expectation(self) -> Encoder:
        return DirectEncoder()

    def __init__(self, seed: int | None = None, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.generator = generator if generator is not None else torch.Generator()
        if seed is not None:
            self.seed(seed)

    def seed(self, seed: int) -> None:
        """Restart the encoder's random stream at ``seed``."""
        self.generator.manual_seed(seed)

    def _uniform(self, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator, device=self.generator.device).to(like)

    def _normal(self, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.generator.device).to(like)


class PoissonEncoder(StochasticEncoder):
    """Poisson (rate) coding: ``s_t ~ Bernoulli(x)``, independent over steps and pixels.

    Gradient: straight-through, ``d s_t / d x = 1``. Inputs are clamped to [0, 1] first.
    """

    def forward(self, images: torch.Tensor, timesteps: int) -> torch.Tensor:
        rates = images.clamp(0.0, 1.0).unsqueeze(0).expand(timesteps, *images.shape)
        spikes = (self._uniform(rates.shape, rates) < rates).to(rates.dtype)
        return rates + (spikes - rates).detach()


class RSCEncoder(StochasticEncoder):
    """Randomized Smoothing Coding: Gaussian noise of level ``sigma`` added to the image.

    Variant ``I`` draws one noise sample shared by all T steps (exactly Gaussian randomized
    smoothing of the base network); variant ``II`` draws a fresh sample at every step.
    Gradient: identity per step (the noise is additive and independent of x).
    """

    VARIANTS = ("I", "II")

    def __init__(
        self,
        sigma: float,
        variant: str = "I",
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(seed=seed, generator=generator)
        if sigma < 0:
            raise UserError(f"RSC sigma must be >= 0, got {sigma}")
        if variant not in self.VARIANTS:
            raise UserError(f"RSC variant must be one of {self.VARIANTS}, got {variant!r}")
        self.sigma = float(sigma)
        self.variant = variant

    @property
    def repeats_frame(self) -> bool:
        return self.variant == "I"

    def frame(self, images: torch.Tensor) -> torch.Tensor:
        return images + self.sigma * self._normal(images.shape, images)

    def forward(self, images: torch.Tensor, timesteps: int) -> torch.Tensor:
        if self.repeats_frame:
            return self.frame(images).unsqueeze(0).expand(timesteps, *images.shape)
        noise = self._normal(torch.Size((timesteps, *images.shape)), images)
        return images.unsqueeze(0) + self.sigma * noise

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, variant={self.variant}"


def build_encoder(name: str, seed: int | None = None, **params: float | str) -> Encoder:
    """An encoder by name (``direct``, ``poisson``, ``rsc``) with its parameters."""
    if name == "direct":
        encoder: Encoder = DirectEncoder()
    elif name == "poisson":
        encoder = PoissonEncoder(seed=seed)
    elif name == "rsc":
        encoder = RSCEncoder(seed=seed, **params)
    else:
        raise UserError(f"unknown encoding {name!r}; choose direct, poisson or rsc")
    if name != "rsc" and params:
        raise UserError(f"encoding {name!r} takes no parameters, got {sorted(params)}")
    return encoder
