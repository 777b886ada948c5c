"""Gradient estimators through a stochastic encoder's sampling: how an attacker differentiates
``E[L(f(s))]`` with respect to the image when ``s`` is drawn from a distribution set by it.

The forward pass never changes with the estimator (the spikes and so the logits are
bit-identical); only what flows back to the image does. Each encoder declares the estimators its
sampling admits (`Encoder.estimators`, the first is its default):

- ``pathwise``: the exact reparameterised gradient of additive noise (RSC: ``x + e`` has
  ``d/dx = 1`` per step), unbiased.
- ``straight-through``: Bernoulli spikes differentiated as if ``d s / d x = 1`` (Bengio et al.
  2013); biased, low variance.
- ``relaxed``: the Concrete / Gumbel-sigmoid relaxation of the same draw (Maddison et al. 2017;
  Jang et al. 2017). The spike ``s = 1[u < x]`` is ``1[logit(x) - logit(u) > 0]``; its gradient is
  that of ``sigmoid((logit(x) - logit(u)) / temperature)``. As the temperature falls, its mean
  tends to the gradient of ``E[s] = x``; the draw ``u`` is the forward's own.
- ``score-function``: REINFORCE (Williams 1992), ``E[(L - b) d log p(s | x) / dx]`` with, for
  ``s ~ Bernoulli(x)``, ``d log p / dx = (s - x) / (x (1 - x))``; unbiased and noisy. The attack
  takes the loss of each draw; the baseline ``b`` is the mean loss of the other draws of the
  same image (leave-one-out, which keeps the estimate unbiased), none with one draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import AfterValidator

from robustbench_snn.errors import unknown_name


@dataclass(frozen=True)
class Estimator:
    """One estimator: what it is, and the default of its temperature (None: it takes none)."""

    description: str
    default_temperature: float | None = None


# The estimators, by name: the one table of them.
ESTIMATORS: dict[str, Estimator] = {
    "pathwise": Estimator("exact reparameterised gradient of additive noise"),
    "straight-through": Estimator("d s / d x = 1 through Bernoulli spikes"),
    "relaxed": Estimator("Concrete / Gumbel-sigmoid relaxation of the forward's own draw", default_temperature=0.5),
    "score-function": Estimator("REINFORCE with a leave-one-out baseline over the EOT draws"),
}

# Probabilities are kept this far inside (0, 1) where an estimator divides by them.
_EDGE = 1e-6


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


def bernoulli_spikes(rates: torch.Tensor, uniform: torch.Tensor, gradient: SamplingGradient) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Spikes ``1[uniform < rates]`` carrying ``gradient``'s backward, and, for the score-function
    estimator, the log-probability of the draw per image (summed over every other dimension but
    the batch one, dimension 1 of ``[T, B, ...]``)."""
    spikes = (uniform < rates).to(rates.dtype)
    if gradient.estimator == "straight-through":
        return rates + (spikes - rates).detach(), None
    if gradient.estimator == "relaxed":
        inside = rates.clamp(_EDGE, 1 - _EDGE)
        noise = uniform.clamp(_EDGE, 1 - _EDGE)
        relaxed = torch.sigmoid((torch.logit(inside) - torch.logit(noise)) / gradient.resolved_temperature)
        return spikes + (relaxed - relaxed.detach()), None
    if gradient.estimator == "score-function":
        inside = rates.clamp(_EDGE, 1 - _EDGE)
        log_prob = spikes * inside.log() + (1 - spikes) * (1 - inside).log()
        return spikes, log_prob.transpose(0, 1).flatten(1).sum(1)
    raise ValueError(f"Bernoulli sampling admits straight-through, relaxed and score-function, not {gradient.estimator}")


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
