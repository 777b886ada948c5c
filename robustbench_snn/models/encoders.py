"""Input encoders: turn an image batch ``[B, ...]`` in [0, 1] into a sequence ``[T, B, ...]``.

Every encoder is one class that declares what the rest of the benchmark needs to know of it:
its registry name (``class MyEncoder(Encoder, name="mine")``), its parameters as a validated
schema (cards and `build_encoder` use it), its labels for tables and plots, whether it repeats
one frame, its adaptive attacks and its smoothing certificate. A new encoder is one class.

Each encoder documents its gradient with respect to the image, because attacks differentiate
through it. Stochastic encoders draw fresh randomness at every forward from their own
``torch.Generator``, so a seed makes a run repeatable without touching the global RNG.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar, Literal, NamedTuple

import torch
from pydantic import Field, ValidationError
from torch import nn

from robustbench_snn.config import Strict, describe
from robustbench_snn.errors import UserError
from robustbench_snn.models.estimators import SamplingGradient, bernoulli_spikes
from robustbench_snn.plugins import Registry

# Every coding by name: those defined below, then those of installed plug-in packages.
ENCODERS: Registry[type[Encoder]] = Registry("encoding", "robustbench_snn.encoders")


class NoParameters(Strict):
    """The parameters of an encoder that takes none."""


class SmoothingCertificate(NamedTuple):
    """A randomized-smoothing certificate an encoder's noise gives: its norm, noise level and name."""

    norm: str
    sigma: float | None
    name: str


class Encoder(nn.Module):
    """Base class. ``stochastic`` tells attacks whether EOT is needed.

    ``adaptive_attacks`` are the attacks designed for this coding: member fields that the
    ``reliable`` protocol adds, each over its first white-box member (so they share its eps, norm
    and EOT). ``Parameters`` is the schema of the keyword arguments the constructor takes (besides
    ``seed`` and ``generator``).

    ``estimators`` are the gradient estimators its sampling admits (`models.estimators`; the first
    is the default); an attack picks one with `using_estimator`. Under ``score-function`` the
    forward leaves the log-probability of its draw per image in ``last_log_prob``, for the attack.
    """

    name: ClassVar[str] = ""
    family_name: ClassVar[str] = ""
    # Bumped by any change that alters a number this coding makes (part of a result's identity).
    version: ClassVar[int] = 1
    Parameters: ClassVar[type[Strict]] = NoParameters
    stochastic = False
    adaptive_attacks: tuple[dict, ...] = ()
    estimators: ClassVar[tuple[str, ...]] = ()
    sampling_gradient: SamplingGradient | None = None
    last_log_prob: torch.Tensor | None = None

    def __init_subclass__(cls, name: str | None = None, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if type(cls.version) is not int or cls.version < 1:
            raise TypeError(f"{cls.__qualname__}.version must be a positive integer (the version of its numbers), got {cls.version!r}")
        if name is not None:
            ENCODERS.register(name, cls)
            cls.name = name

    @classmethod
    def label(cls, params: dict) -> str:
        """A short name of the coding with its parameters that matter, e.g. ``rsc-I``."""
        return cls.name

    @classmethod
    def family(cls, params: dict) -> str:
        """The kind of model the coding makes, as tables group them, e.g. ``Poisson SNN``."""
        return cls.family_name

    @classmethod
    def noise_level(cls, params: dict) -> float | None:
        """The Gaussian noise level sigma of the input, when the coding adds one (plots and the leaderboard show it)."""
        return None

    def smoothing_certificate(self) -> SmoothingCertificate | None:
        """The certificate a majority vote over this encoder's draws carries (None: no noise of its own)."""
        return None

    def with_noise_level(self, sigma: float) -> None:
        """Set the noise level a smoothed classifier certifies with (only for encoders whose noise has one)."""
        raise UserError(f"a {self.name}-coded model is smoothed by its own randomness; --sigma applies to RSC models and noise-free ones")

    @property
    def current_estimator(self) -> SamplingGradient | None:
        """The estimator the sampling's backward follows now (None for an encoder that does not sample)."""
        if not self.estimators:
            return None
        return self.sampling_gradient or SamplingGradient(self.estimators[0])

    @contextmanager
    def using_estimator(self, gradient: SamplingGradient | None) -> Iterator["Encoder"]:
        """Differentiate the sampling with ``gradient`` inside the block (None: the default)."""
        if gradient is not None and gradient.estimator not in self.estimators:
            raise UserError(f"{self.name} coding admits the estimators {', '.join(self.estimators) or '(none)'}, not {gradient.estimator}")
        previous = self.sampling_gradient
        self.sampling_gradient = gradient
        try:
            yield self
        finally:
            self.sampling_gradient = previous
            self.last_log_prob = None

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


class DirectEncoder(Encoder, name="direct"):
    """Direct coding: ``x_t = x`` at every step. Gradient: the sum over steps (identity per step)."""

    family_name = "direct SNN"
    repeats_frame = True

    def frame(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def forward(self, images: torch.Tensor, timesteps: int) -> torch.Tensor:
        return images.unsqueeze(0).expand(timesteps, *images.shape)


class FrequencyEncoder(Encoder, name="frequency"):
    """FEEL-SNN's frequency encoding (Xu et al., NeurIPS 2024), our reading of the authors' code:
    step t sees the image low-pass filtered in the Fourier domain, ``x_t = |IFFT(mask_t * FFT(x))|``,
    where ``mask_t`` keeps a centred square of the shifted spectrum whose half-width shrinks from
    the whole image at the first step to 1/T of it at the last (``ceil(n/2 * (T - t) / T)`` for a
    side of n pixels; the authors' 16, 14, ..., 2 for CIFAR's 32 pixels and T = 8). The first step
    is the image itself; later ones drop ever more of the high frequencies. Deterministic; gradient:
    exact, by autograd through the transforms and the modulus.
    """

    family_name = "frequency-coded SNN"

    def forward(self, images: torch.Tensor, timesteps: int) -> torch.Tensor:
        axes = (-2, -1)
        spectrum = torch.fft.fftshift(torch.fft.fft2(images), dim=axes)
        filtered = spectrum.unsqueeze(0) * low_pass_masks(images.shape[-2:], timesteps).to(images.device)[:, None, None]
        return torch.fft.ifft2(torch.fft.ifftshift(filtered, dim=axes)).abs()


def low_pass_masks(size: tuple[int, int] | torch.Size, timesteps: int) -> torch.Tensor:
    """The frequency coding's masks ``[T, H, W]``: 1 inside each step's centred square of the shifted spectrum."""
    height, width = size
    masks = torch.zeros(timesteps, height, width)
    for step in range(timesteps):
        half = math.ceil(min(height, width) / 2 * (timesteps - step) / timesteps)
        masks[step, max(0, height // 2 - half) : height // 2 + half, max(0, width // 2 - half) : width // 2 + half] = 1
    return masks


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


class PoissonEncoder(StochasticEncoder, name="poisson"):
    """Poisson (rate) coding: ``s_t ~ Bernoulli(x)``, independent over steps and pixels.

    Gradient: straight-through by default, ``d s_t / d x = 1``; the relaxed (pixel or logit space)
    and score-function estimators give others (`models.estimators`). Inputs are clamped to [0, 1]
    first, the gradient passing through the clamp: pixels at exactly 0 or 1 get theirs like any other.
    """

    family_name = "Poisson SNN"
    version = 2
    estimators = ("straight-through", "relaxed", "relaxed-logit", "score-function")

    def smoothing_certificate(self) -> SmoothingCertificate:
        return SmoothingCertificate("L1", None, "poisson")

    def forward(self, images: torch.Tensor, timesteps: int) -> torch.Tensor:
        # The clamp's value with the identity's gradient: torch's clamp passes none at its bounds,
        # which silenced the straight-through gradient at every pixel equal to 0 or 1 (version 1).
        rates = (images + (images.clamp(0.0, 1.0) - images).detach()).unsqueeze(0).expand(timesteps, *images.shape)
        spikes, self.last_log_prob = bernoulli_spikes(rates, self._uniform(rates.shape, rates), self.current_estimator)
        return spikes


class RSCParameters(Strict):
    sigma: float = Field(ge=0, le=10, allow_inf_nan=False)
    variant: Literal["I", "II"]


class RSCEncoder(StochasticEncoder, name="rsc"):
    """Randomized Smoothing Coding: Gaussian noise of level ``sigma`` added to the image.

    Variant ``I`` draws one noise sample shared by all T steps (exactly Gaussian randomized
    smoothing of the base network); variant ``II`` draws a fresh sample at every step.
    Gradient: identity per step (the noise is additive and independent of x): the exact pathwise one.
    """

    Parameters = RSCParameters
    estimators = ("pathwise",)

    def __init__(
        self,
        sigma: float,
        variant: str = "I",
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(seed=seed, generator=generator)
        params = validated_parameters(type(self), {"sigma": sigma, "variant": variant})
        self.sigma = float(params["sigma"])
        self.variant = params["variant"]

    @classmethod
    def label(cls, params: dict) -> str:
        return f"rsc-{params['variant']}"

    @classmethod
    def family(cls, params: dict) -> str:
        return f"RSC-{params['variant']}"

    @classmethod
    def noise_level(cls, params: dict) -> float:
        return params["sigma"]

    def smoothing_certificate(self) -> SmoothingCertificate:
        return SmoothingCertificate("L2", self.sigma, f"rsc-{self.variant}")

    def with_noise_level(self, sigma: float) -> None:
        self.sigma = float(sigma)

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


def encoder_class(name: str) -> type[Encoder]:
    """The registered encoder ``name``."""
    return ENCODERS.lookup(name)


def validated_parameters(encoder: type[Encoder], params: dict) -> dict:
    """``params`` checked against ``encoder``'s schema, as plain values."""
    try:
        return encoder.Parameters.model_validate(params).model_dump()
    except ValidationError as error:
        raise UserError(f"invalid parameters for encoding {encoder.name!r}\n{describe(error, '(parameters)')}") from None


def build_encoder(name: str, seed: int | None = None, **params: float | str) -> Encoder:
    """An encoder by registered name with its parameters (validated by its schema)."""
    encoder = encoder_class(name)
    arguments = validated_parameters(encoder, params)
    return encoder(**arguments, **({"seed": seed} if encoder.stochastic else {}))
