"""Gradient estimators through a stochastic encoder's sampling: how an attacker differentiates
``E[L(f(s))]`` with respect to the image when ``s`` is drawn from a distribution set by it.

The forward pass never changes with the estimator (the spikes and so the logits are
bit-identical); only what flows back to the image does. Each encoder declares the estimators its
sampling admits (`Encoder.estimators`, the first is its default):

- ``pathwise``: the exact reparameterised gradient of additive noise (RSC: ``x + e`` has
  ``d/dx = 1`` per step), unbiased.
- ``straight-through``: Bernoulli spikes differentiated as if ``d s / d x = 1`` (Bengio et al.
  2013); biased, low variance.
- ``relaxed`` and ``relaxed-logit``: the spike ``s = 1[u < x]`` relaxed to
  ``sigmoid((g(x) - g(u)) / temperature)`` (Concrete / Gumbel-sigmoid, Maddison et al. 2017; Jang
  et al. 2017), with ``g`` the identity (pixel space) or a logit (logit space, on pixels squeezed
  into ``[LOGIT_SQUEEZE, 1 - LOGIT_SQUEEZE]`` so that a pixel at 0 or 1 has a finite logit); the
  draw ``u`` is the forward's own. The relaxation decides *which* spikes carry gradient (those
  whose draw lies within about a temperature of the pixel, in that space); each spike's gradient
  is divided by its mean over the draw, so that its expectation is exactly ``d E[s] / dx = 1`` at
  every pixel, 0 and 1 included (where half of a Fashion-MNIST image lies, and where an attacker
  makes new spikes). A clamp before the logit would pass no gradient there at all.
- ``score-function``: REINFORCE (Williams 1992), ``E[(L - b) d log p(s | x) / dx]`` with, for
  ``s ~ Bernoulli(x)``, ``d log p / dx = (s - x) / (x (1 - x))``; unbiased and noisy. The attack
  takes the loss of each draw; the baseline ``b`` is the mean loss of the other draws of the
  same image (leave-one-out, which keeps the estimate unbiased), none with one draw. Where the
  draw is certain (a pixel at exactly 0 or 1, whose other outcome has probability zero) the score
  says nothing, and the spike takes the straight-through term instead.

Each estimator declares a ``version``, part of the identity of every result that used it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import AfterValidator

from robustbench_snn.errors import unknown_name

# The logit-space relaxation works on pixels squeezed into [LOGIT_SQUEEZE, 1 - LOGIT_SQUEEZE].
LOGIT_SQUEEZE = 0.01
# Probabilities are kept this far inside (0, 1) where the score function divides by them.
_EDGE = 1e-6


@dataclass(frozen=True)
class Estimator:
    """One estimator: what it is, the default of its temperature (None: it takes none), and the
    version of its numbers (bumped by any change to the gradient it gives)."""

    description: str
    default_temperature: float | None = None
    version: int = 1

    @property
    def summary(self) -> str:
        """What `rsc-bench names estimator` says of it."""
        default = "" if self.default_temperature is None else f" (temperature {self.default_temperature:g} unless set)"
        return self.description + default


# The estimators, by name: the one table of them.
ESTIMATORS: dict[str, Estimator] = {
    "pathwise": Estimator("exact reparameterised gradient of additive noise"),
    "straight-through": Estimator("d s / d x = 1 through Bernoulli spikes"),
    "relaxed": Estimator(
        "Gumbel-sigmoid relaxation of the forward's own draw in pixel space, unit mean gradient", default_temperature=0.1, version=2
    ),
    "relaxed-logit": Estimator("Concrete relaxation of the forward's own draw in logit space, unit mean gradient", default_temperature=0.5),
    "score-function": Estimator(
        "REINFORCE with a leave-one-out baseline over the EOT draws (straight-through where the draw is certain)", version=2
    ),
}


def _check_estimator(name: str) -> str:
    if name not in ESTIMATORS:
        raise ValueError(unknown_name("gradient estimator", name, ESTIMATORS))
    return name


EstimatorName = Annotated[str, AfterValidator(_check_estimator)]


@dataclass(frozen=True)
class SamplingGradient:
    """An attacker's choice of estimator and its temperature (None: the estimator's default)."""

    estimator: str
    temperature: float | None = None

    @property
    def resolved_temperature(self) -> float | None:
        default = ESTIMATORS[self.estimator].default_temperature
        return None if default is None else (self.temperature if self.temperature is not None else default)

    def label(self) -> str:
        temperature = self.resolved_temperature
        return self.estimator if temperature is None else f"{self.estimator}@{temperature:g}"


def _logistic_density(offset: torch.Tensor, temperature: float) -> torch.Tensor:
    """The derivative of ``sigmoid(offset / temperature)`` with respect to ``offset``."""
    scaled = offset / temperature
    return torch.sigmoid(scaled) * torch.sigmoid(-scaled) / temperature  # symmetric: no early underflow on either side


def _squeezed_logit(values: torch.Tensor) -> torch.Tensor:
    return torch.logit(LOGIT_SQUEEZE + (1 - 2 * LOGIT_SQUEEZE) * values)


def _pixel_mean_weight(rates: torch.Tensor, temperature: float) -> torch.Tensor:
    """``E_u[k(x - u)]`` for ``u ~ U(0, 1)``: the pixel-space kernel's mean, in closed form."""
    return torch.sigmoid(rates / temperature) - torch.sigmoid((rates - 1) / temperature)


@functools.lru_cache(maxsize=16)
def _logit_mean_weight_table(temperature: float, points: int = 2001, nodes: int = 8001) -> torch.Tensor:
    """``E_u[k(g(x) - g(u))]`` on ``points`` pixels evenly spaced in [0, 1], by quadrature in
    ``v = g(u)`` (where ``u`` has density ``sigmoid'(v) / (1 - 2 squeeze)``), in double precision."""
    low, high = _squeezed_logit(torch.tensor([0.0, 1.0], dtype=torch.float64)).tolist()
    grid = torch.linspace(low, high, nodes, dtype=torch.float64)
    density = torch.sigmoid(grid) * (1 - torch.sigmoid(grid))
    density = density / torch.trapezoid(density, grid)
    positions = _squeezed_logit(torch.linspace(0, 1, points, dtype=torch.float64))
    kernel = _logistic_density(positions[:, None] - grid[None, :], temperature)
    return torch.trapezoid(kernel * density[None, :], grid, dim=1)


def _logit_mean_weight(rates: torch.Tensor, temperature: float) -> torch.Tensor:
    table = _logit_mean_weight_table(float(temperature)).to(rates.device)
    position = rates.detach().double().clamp(0, 1) * (len(table) - 1)
    below = position.floor().long().clamp(max=len(table) - 2)
    share = position - below
    return ((1 - share) * table[below] + share * table[below + 1]).to(rates.dtype)


# Each relaxation: the map ``g`` to the space it relaxes in, and the kernel's mean over the draw.
_RELAXATIONS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor, float], torch.Tensor]]] = {
    "relaxed": (lambda values: values, _pixel_mean_weight),
    "relaxed-logit": (_squeezed_logit, _logit_mean_weight),
}


def relaxed_weight(rates: torch.Tensor, uniform: torch.Tensor, gradient: SamplingGradient) -> torch.Tensor:
    """``d s / d x`` of each spike under a relaxation: the relaxed spike's derivative divided by its
    mean over the draw, so that it averages to ``d E[s] / dx = 1`` at every pixel in [0, 1]."""
    position, mean_weight = _RELAXATIONS[gradient.estimator]
    temperature = gradient.resolved_temperature
    rates, uniform = rates.detach().clamp(0, 1), uniform.detach()
    kernel = _logistic_density(position(rates) - position(uniform), temperature)
    return kernel / mean_weight(rates, temperature)


def bernoulli_spikes(rates: torch.Tensor, uniform: torch.Tensor, gradient: SamplingGradient) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Spikes ``1[uniform < rates]`` carrying ``gradient``'s backward, and, for the score-function
    estimator, the log-probability of the draw per image (summed over every other dimension but
    the batch one, dimension 1 of ``[T, B, ...]``)."""
    spikes = (uniform < rates).to(rates.dtype)
    if gradient.estimator == "straight-through":
        return rates + (spikes - rates).detach(), None
    through = rates - rates.detach()  # zero, with gradient 1 to the rates
    if gradient.estimator in _RELAXATIONS:
        return spikes + through * relaxed_weight(rates, uniform, gradient), None
    if gradient.estimator == "score-function":
        certain = (rates <= 0) | (rates >= 1)
        inside = rates.clamp(_EDGE, 1 - _EDGE)
        log_prob = torch.where(certain, 0.0, spikes * inside.log() + (1 - spikes) * (1 - inside).log())
        return spikes + torch.where(certain, through, 0.0), log_prob.transpose(0, 1).flatten(1).sum(1)
    raise ValueError(f"Bernoulli sampling admits straight-through, relaxed, relaxed-logit and score-function, not {gradient.estimator}")


def leave_one_out(values: torch.Tensor) -> torch.Tensor:
    """Per draw (dimension 0), the mean of the other draws' values (zero with one draw)."""
    draws = values.shape[0]
    if draws == 1:
        return torch.zeros_like(values)
    return (values.sum(0, keepdim=True) - values) / (draws - 1)


def score_function_surrogate(values: torch.Tensor, log_prob: torch.Tensor) -> torch.Tensor:
    """``values [k, B, ...]`` in the forward pass, whose gradient adds the score-function estimate
    ``(values - baseline) * d log_prob / dx`` per draw (``log_prob [k, B]``) to the values' own
    pathwise gradient (none where the sample is the only path from the image)."""
    centred = (values - leave_one_out(values)).detach()
    weight = (log_prob - log_prob.detach()).view(*log_prob.shape, *([1] * (values.dim() - 2)))
    return values + centred * weight
