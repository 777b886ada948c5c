"""Gradient estimators through Poisson sampling, against values computed by hand or exactly."""

import itertools

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from robustbench_snn.attacks.primitives import loss_gradient
from robustbench_snn.attacks.protocol import AttackSpec
from robustbench_snn.attacks.runner import normalised
from robustbench_snn.data import load_dataset
from robustbench_snn.models.encoders import PoissonEncoder, RSCEncoder
from robustbench_snn.models.estimators import SamplingGradient, leave_one_out
from robustbench_snn.registry import load_model

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


def mean_estimate(
    model: TinyPoissonNet, images: torch.Tensor, labels: torch.Tensor, estimator: str, repeats: int, loss: str = "ce", temperature=None
):
    with model.encoder.using_estimator(SamplingGradient(estimator, temperature)):
        gradient, _ = loss_gradient(model, images.repeat(repeats, 1), labels.repeat(repeats), draws=8, loss=loss)
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


# Pixels at the data's edges as well as inside: half of a Fashion-MNIST image is exactly 0, and
# raising those pixels is how an attacker makes new spikes.
EDGE_RATES = torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64)
# Every estimator the Poisson coding admits, in every parameterisation offered (temperature None: its default).
PARAMETERISATIONS = [
    ("straight-through", None),
    ("relaxed", None),
    ("relaxed", 0.02),
    ("relaxed", 0.3),
    ("relaxed-logit", None),
    ("relaxed-logit", 0.2),
    ("score-function", None),
]


class LinearPoissonNet(TinyPoissonNet):
    """Poisson coding of 3 pixels read out linearly into 2 classes: the CW margin is linear in the
    spikes, so every estimator whose mean is ``d E[s] / dx`` is unbiased for ``d E[margin] / dx``."""

    def logits_of(self, spikes: torch.Tensor) -> torch.Tensor:
        return spikes.sum(0) @ self.weights.T


def exact_margin_gradient(model: TinyPoissonNet, rates: torch.Tensor, label: int, step: float = 1e-4) -> torch.Tensor:
    """``d E[CW margin] / dx`` by finite differences of the exact expectation (every spike train
    weighted by its probability), one-sided into [0, 1] at its edges."""

    def expected(at: torch.Tensor) -> torch.Tensor:
        total = torch.zeros((), dtype=torch.float64)
        for bits in itertools.product((0.0, 1.0), repeat=3 * TIMESTEPS):
            spikes = torch.tensor(bits, dtype=torch.float64).view(TIMESTEPS, 1, 3)
            logits = model.logits_of(spikes.float()).double()
            total = total + torch.where(spikes == 1, at, 1 - at).prod() * (logits[0, 1 - label] - logits[0, label])
        return total

    columns = []
    for unit in torch.eye(3, dtype=torch.float64):
        low, high = (rates - step * unit).clamp(0, 1), (rates + step * unit).clamp(0, 1)
        columns.append((expected(high) - expected(low)) / (high - low).sum())
    return torch.stack(columns).float()


@pytest.mark.parametrize(("estimator", "temperature"), PARAMETERISATIONS)
def test_every_estimator_matches_the_exact_expectation_gradient_including_pixels_at_0_and_1(estimator, temperature):
    model = LinearPoissonNet(seed=5)
    exact = exact_margin_gradient(model, EDGE_RATES, label=0)
    images = EDGE_RATES.float().unsqueeze(0)
    estimate = mean_estimate(model, images, torch.tensor([0]), estimator, 20_000, loss="cw", temperature=temperature)
    assert (exact.abs() > 1).all()  # the edges matter: the exact gradient is far from zero there
    assert torch.allclose(estimate, exact, rtol=0.08, atol=0.05), (estimate, exact)


@pytest.mark.parametrize(("estimator", "temperature"), PARAMETERISATIONS)
def test_every_estimator_moves_edge_pixels_the_way_the_exact_expectation_does_on_a_nonlinear_loss(estimator, temperature):
    # Only the score function is unbiased where the loss bends; every estimator must still pass a
    # gradient at 0 and 1, in the direction of the exact one-sided derivative.
    model = TinyPoissonNet(seed=2)
    rates, label = EDGE_RATES, 1
    step = 1e-4
    exact = []
    for unit in torch.eye(3, dtype=torch.float64):
        low, high = (rates - step * unit).clamp(0, 1), (rates + step * unit).clamp(0, 1)
        exact.append((exact_expected_loss(model, high, label) - exact_expected_loss(model, low, label)) / (high - low).sum())
    exact = torch.stack(exact).float()
    estimate = mean_estimate(model, rates.float().unsqueeze(0), torch.tensor([label]), estimator, 20_000, temperature=temperature)
    edges = torch.tensor([True, False, True])
    assert (estimate[edges].abs() > 0.05).all(), estimate
    assert torch.equal(estimate[edges].sign(), exact[edges].sign()), (estimate, exact)


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
    spec = AttackSpec(attack="pgd", eps=0.1, estimator="relaxed", temperature=0.1, eot=8)
    assert normalised(spec, TinyPoissonNet()).temperature is None  # 0.1 is the default temperature
    assert normalised(spec, TinyPoissonNet()).label() == "pgd-10[bptt|relaxed@0.1]"
    assert normalised(spec.model_copy(update={"temperature": 0.2}), TinyPoissonNet()).label() == "pgd-10[bptt|relaxed@0.2]"
    assert normalised(spec.model_copy(update={"estimator": "straight-through"}), TinyPoissonNet()).estimator is None


@pytest.mark.parametrize("name", ["fmnist_snn_poisson", "fmnist_poisson_lowlat"])
def test_no_estimator_leaves_a_real_image_without_gradient_at_its_background_or_its_brightest_pixels(name):
    # A clamp passes no gradient at its bounds: version 1 of the Poisson coding lost every pixel at
    # exactly 0 or 1 this way (about half of a Fashion-MNIST image), under every estimator.
    model = load_model(name, seed=0)
    images, labels = load_dataset("fashion-mnist", "test", download=False).tensors
    images, labels = images[:2].clone(), labels[:2].clone()  # read afresh: the first two have pixels at 0 and at 1
    assert (images == 0).any() and (images == 1).any()
    for estimator in model.encoder.estimators:
        with model.encoder.using_estimator(SamplingGradient(estimator)):
            gradient, _ = loss_gradient(model, images, labels, draws=8, loss="cw")
        for edge in (images == 0, images == 1):
            assert gradient[edge].abs().sum() > 0, (estimator, "edge pixels without gradient")
        assert torch.isfinite(gradient).all(), estimator
