"""Randomized-smoothing certificates: exact on a linear classifier, sound and monotone on a shipped RSC-I SNN,
and never contradicted by attacks on the same smoothed classifier."""

import json
import math

import pytest
import torch
from click.testing import CliRunner
from conftest import model_with
from scipy.stats import norm
from torch import nn

from robustbench_snn.certify import (
    ABSTAIN,
    Certificate,
    GaussianNoise,
    SmoothedClassifier,
    certify_batch,
    certify_model,
    sampler_for,
)
from robustbench_snn.cli import main
from robustbench_snn.data import load_dataset
from robustbench_snn.errors import UserError
from robustbench_snn.evaluation import benchmark
from robustbench_snn.norms import covering_radius
from robustbench_snn.tables import clopper_pearson

SIGMA, N, N0, ALPHA = 0.5, 20000, 100, 0.001


class Linear(nn.Module):
    """Class 1 where w.x + b > 0: under N(0, sigma^2) noise, P(class 1) = Phi((w.x + b) / (sigma ||w||))."""

    def __init__(self, w: torch.Tensor, b: float) -> None:
        super().__init__()
        self.w, self.b = w, b

    def forward(self, x):
        score = x.flatten(1) @ self.w + self.b
        return torch.stack([torch.zeros_like(score), score], 1)


def test_linear_classifier_radius_matches_the_distance_to_its_boundary():
    torch.manual_seed(0)
    w = torch.randn(10)
    unit = w / w.norm()
    distances = [0.2, 0.5, 1.0, -0.7]
    images = torch.stack([distance * unit for distance in distances])
    labels = torch.tensor([1, 1, 1, 0])
    noisy = GaussianNoise(Linear(w, 0.0), SIGMA, seed=1)
    results = certify_batch(sampler_for(noisy, 2), Certificate("L2", SIGMA, 1, "gaussian"), images, labels, N0, N, ALPHA)
    for distance, result in zip(distances, results):
        p_true = norm.cdf(abs(distance) / SIGMA)
        spread = 4 * math.sqrt(p_true * (1 - p_true) / N)
        low, high = (SIGMA * norm.ppf(clopper_pearson(round(p * N), N, 1 - 2 * ALPHA)[0]) for p in (p_true - spread, p_true + spread))
        assert result.correct
        assert result.radius <= abs(distance), "a certificate may never exceed the true radius"
        assert low <= result.radius <= high, (distance, result.radius, low, high)


def test_a_point_on_the_boundary_abstains():
    w = torch.ones(4)
    noisy = GaussianNoise(Linear(w, 0.0), SIGMA, seed=2)
    (result,) = certify_batch(
        sampler_for(noisy, 2), Certificate("L2", SIGMA, 1, "gaussian"), torch.zeros(1, 4), torch.tensor([1]), N0, 2000, ALPHA
    )
    assert result.prediction == ABSTAIN and result.radius == 0.0 and not result.correct


def test_certificate_formulas_for_each_kind_of_noise():
    assert Certificate("L2", 0.25, 4, "rsc-I").radius(norm.cdf(2.0)) == pytest.approx(0.5)
    assert Certificate("L2", 0.25, 4, "rsc-II").radius(norm.cdf(2.0)) == pytest.approx(0.25)
    assert Certificate("L1", None, 4, "poisson").radius(0.9) == pytest.approx(0.1)
    assert Certificate("L1", None, 4, "poisson").radius(0.5) == 0.0


@pytest.fixture(scope="module")
def fmnist_head():
    images, labels = load_dataset("fashion-mnist", "test").tensors
    return images[:24], labels[:24]


def test_certified_accuracy_never_exceeds_the_smoothed_accuracy_and_more_draws_never_shrink_radii(shipped_models, fmnist_head):
    model = model_with(shipped_models, kind="snn", encoding="rsc")
    images, labels = fmnist_head
    small = certify_model(model, images, labels, dataset="fashion-mnist", num_classes=10, n0=20, n=100, alpha=ALPHA, seed=0)
    large = certify_model(model, images, labels, dataset="fashion-mnist", num_classes=10, n0=20, n=800, alpha=ALPHA, seed=0)
    model.encoder.seed(123)
    votes = sampler_for(model, 10)(images, 400).argmax(1)
    smoothed_accuracy = (votes == labels).float().mean().item()
    for summary in (small, large):
        assert summary.certificate == "rsc-I" and summary.norm == "L2" and summary.sigma == model.encoder.sigma
        assert summary.curve["0"] <= smoothed_accuracy
        assert all(earlier >= later for earlier, later in zip(summary.curve.values(), list(summary.curve.values())[1:]))
    assert large.mean_radius >= small.mean_radius
    assert large.mean_radius > 0


def test_models_without_noise_need_a_sigma_and_poisson_models_take_none(shipped_models, fmnist_head):
    images, labels = fmnist_head
    direct = model_with(shipped_models, kind="snn", encoding="direct")
    with pytest.raises(UserError, match="no randomized-smoothing certificate"):
        certify_model(direct, images, labels, dataset="fashion-mnist", num_classes=10, n0=2, n=4)
    smoothed = certify_model(
        model_with(shipped_models, kind="ann", encoding="direct"),
        images[:4],
        labels[:4],
        dataset="fashion-mnist",
        num_classes=10,
        sigma=0.25,
        n0=10,
        n=50,
    )
    assert smoothed.certificate == "gaussian" and smoothed.sigma == 0.25
    poisson = model_with(shipped_models, kind="snn", encoding="poisson")
    with pytest.raises(UserError, match="smoothed by its own randomness"):
        certify_model(poisson, images, labels, dataset="fashion-mnist", num_classes=10, sigma=0.1, n0=2, n=4)
    summary = certify_model(poisson, images[:4], labels[:4], dataset="fashion-mnist", num_classes=10, n0=10, n=50)
    assert summary.norm == "L1" and summary.certificate == "poisson"


def test_covering_radius_holds_the_attack_ball_in_the_certificate_norm():
    assert covering_radius("L2", 0.5, "L2", 784) == 0.5
    assert covering_radius("Linf", 0.1, "L2", 784) == pytest.approx(2.8)
    assert covering_radius("L2", 0.5, "L1", 784) == pytest.approx(14.0)
    assert covering_radius("Linf", 0.1, "L1", 784) == pytest.approx(78.4)
    assert covering_radius("L1", 0.3, "L2", 784) == 0.3


def test_attacks_on_the_smoothed_classifier_never_beat_its_certificate(shipped_models, fmnist_head):
    """On a shipped RSC-I model, L2 PGD on the smoothed classifier keeps the certified samples; a certificate
    made 100x too large is caught by the check."""
    images, labels = fmnist_head
    base = shipped_models["fmnist_rsc1_s0.2"]
    smoothed = SmoothedClassifier(base, 10, seed=0, votes=50, n0=20, n=400, alpha=ALPHA)
    attack = {"norm": "L2", "eps": 0.25, "steps": 5, "eot": 2}
    record = benchmark(smoothed, attack="pgd", n_examples=len(labels), batch_size=len(labels), overrides=attack)
    details = record.flag_details
    assert record.protocol == "pgd-custom-smoothed" and record.params["smoothed"]["votes"] == 50
    assert details["certified_radius_needed"] == 0.25
    assert details["certified_accuracy_at_eps"] >= 0.5, "the check must have certified samples to test"
    assert record.robust_accuracy >= details["certified_accuracy_at_eps"]
    assert details["certified_but_fooled"] == 0 and "below_certified" not in record.flags

    sigma = smoothed.certificate.sigma
    smoothed.certificate = Certificate("L2", 100 * sigma, 1, "rsc-I")
    record = benchmark(smoothed, attack="pgd", n_examples=len(labels), batch_size=len(labels), overrides={**attack, "eps": 4.0})
    assert record.flag_details["certified_but_fooled"] >= 2 and "below_certified" in record.flags


def test_evaluate_smoothed_from_the_command_line():
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "evaluate",
            "--model",
            "fmnist_rsc1_s0.2",
            "--smoothed",
            "--attack",
            "pgd",
            "--norm",
            "L2",
            "--eps",
            "0.25",
            "--steps",
            "2",
            "--eot",
            "1",
            "--votes",
            "20",
            "--cert-draws",
            "100",
            "-n",
            "8",
            "--no-store",
            "--json",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["protocol"] == "pgd-custom-smoothed" and record["params"]["smoothed"]["certificate"] == "rsc-I"
    assert 0 <= record["flag_details"]["certified_accuracy_at_eps"] <= record["clean_accuracy"]
    result = runner.invoke(main, ["evaluate", "--model", "fmnist_ann", "--sigma", "0.25", "-n", "4", "--no-store"])
    assert result.exit_code != 0 and "pass --smoothed" in result.output and "Traceback" not in result.output
