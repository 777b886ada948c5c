"""Gradient estimators through Poisson sampling, against values computed by hand or exactly."""

import itertools

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from robustbench_snn.attacks.primitives import loss_gradient
from robustbench_snn.attacks.protocol import AttackSpec
from robustbench_snn.attacks.runner import normalised
from robustbench_snn.models.encoders import PoissonEncoder, RSCEncoder
from robustbench_snn.models.estimators import SamplingGradient, leave_one_out

TIMESTEPS = 2


class TinyPoissonNet(nn.Module):
    """Poisson coding of 3 pixels, then a fixed nonlinear readout of the spike counts."""

    stochastic = True

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.encoder = PoissonEncoder(seed=seed)
        self.weights = torch.tensor([[1.5, -2.0, 0.5], [-1.0, 1.0, 2.0]])

    def logits_of(self, spikes: torch.Tensor) -> torch.Tensor:
        counts = spikes.sum(0)
        return torch.tanh(counts @ self.weights.T) * 3

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits_of(self.encoder(images, TIMESTEPS))


def exact_expected_loss(model: TinyPoissonNet, rates: torch.Tensor, label: int) -> torch.Tensor:
    """``E[CE]`` over every one of the 2^(3 T) spike trains, weighted by its probability."""
    total = torch.zeros((), dtype=torch.float64)
    for bits in itertools.product((0.0, 1.0), repeat=3 * TIMESTEPS):
        spikes = torch.tensor(bits, dtype=torch.float64).view(TIMESTEPS, 1, 3)
        probability = torch.where(spikes == 1, rates, 1 - rates).prod()
        logits = model.logits_of(spikes.float()).double()
        total = total + probability * F.cross_entropy(logits, torch.tensor([label]))
    return total


def mean_estimate(model: TinyPoissonNet, images: torch.Tensor, labels: torch.Tensor, estimator: str, repeats: int, **extra):
    with model.encoder.using_estimator(SamplingGradient(estimator, **extra)):
        gradient, _ = loss_gradient(model, images.repeat(repeats, 1), labels.repeat(repeats), draws=8)
    return gradient.mean(0)


def test_every_estimator_draws_the_same_spikes():
    images = torch.rand(16, 3)
    outputs = []
    for estimator in PoissonEncoder.estimators:
        encoder = PoissonEncoder(seed=3)
        with encoder.using_estimator(SamplingGradient(estimator)):
            outputs.append(encoder(images, 4))
    for output in outputs[1:]:
        assert torch.equal(output, outputs[0])


def test_straight_through_is_the_identity_per_step():
    images = torch.rand(4, 3, requires_grad=True)
    encoder = PoissonEncoder(seed=0)
    encoder(images, 5).sum().backward()
    assert torch.equal(images.grad, torch.full_like(images, 5.0))


def test_relaxed_estimator_tends_to_the_expectation_gradient_as_the_temperature_falls():
    # For a linear loss w . s, d E[L] / dx = w per step; the relaxed estimator's mean tends to it.
    weights = torch.tensor([1.0, -2.0, 0.5])
    rates = torch.tensor([[0.3, 0.6, 0.8]]).repeat(200_000, 1).requires_grad_(True)
    encoder = PoissonEncoder(seed=1)
    errors = {}
    for temperature in (1.0, 0.1):
        rates.grad = None
        with encoder.using_estimator(SamplingGradient("relaxed", temperature)):
            (encoder(rates, 1)[0] * weights).sum().backward()
        errors[temperature] = (rates.grad.mean(0) - weights).abs().max().item()
    assert errors[0.1] < 0.05
    assert errors[0.1] < errors[1.0]


def test_score_function_mean_matches_the_finite_difference_of_the_exact_expected_loss():
    model = TinyPoissonNet(seed=2)
    rates, label = torch.tensor([0.3, 0.55, 0.8], dtype=torch.float64), 1
    step = 1e-5
    exact = torch.stack(
        [
            (exact_expected_loss(model, rates + step * unit, label) - exact_expected_loss(model, rates - step * unit, label)) / (2 * step)
            for unit in torch.eye(3, dtype=torch.float64)
        ]
    ).float()
    estimate = mean_estimate(model, rates.float().unsqueeze(0), torch.tensor([label]), "score-function", repeats=40_000)
    assert torch.allclose(estimate, exact, atol=0.03), (estimate, exact)


def test_the_straight_through_estimate_differs_from_the_unbiased_one_on_a_nonlinear_loss():
    # The reason the estimators exist: straight-through is biased where the loss bends.
    model = TinyPoissonNet(seed=4)
    images, labels = torch.tensor([[0.3, 0.55, 0.8]]), torch.tensor([1])
    straight = mean_estimate(model, images, labels, "straight-through", repeats=20_000)
    score = mean_estimate(model, images, labels, "score-function", repeats=20_000)
    assert (straight - score).abs().max() > 0.1


def test_leave_one_out_baseline():
    values = torch.tensor([[1.0], [2.0], [6.0]])
    assert torch.equal(leave_one_out(values), torch.tensor([[4.0], [3.5], [1.5]]))
    assert torch.equal(leave_one_out(values[:1]), torch.zeros(1, 1))


def test_an_estimator_the_coding_does_not_admit_is_refused_by_the_encoder_and_normalised_away():
    with pytest.raises(Exception, match="admits"):
        with RSCEncoder(sigma=0.2).using_estimator(SamplingGradient("relaxed")):
            pass
    spec = AttackSpec(attack="pgd", eps=0.1, estimator="relaxed", temperature=0.5, eot=8)
    assert normalised(spec, TinyPoissonNet()).temperature is None  # 0.5 is the default temperature
    assert normalised(spec, TinyPoissonNet()).label() == "pgd-10[bptt|relaxed@0.5]"
    assert normalised(spec.model_copy(update={"temperature": 0.2}), TinyPoissonNet()).label() == "pgd-10[bptt|relaxed@0.2]"
    assert normalised(spec.model_copy(update={"estimator": "straight-through"}), TinyPoissonNet()).estimator is None
