"""Every registered attack, encoder and architecture, tested alike (as timm tests every model):
a new one that breaks the shared contract fails here without a test of its own."""

from __future__ import annotations

import pytest
import torch

from robustbench_snn import attack
from robustbench_snn.attacks import Protocol, attack_names, get_attack
from robustbench_snn.attacks.protocol import AttackSpec
from robustbench_snn.data import DATASETS
from robustbench_snn.models import ARCHITECTURES, ModelSpec, build_classifier
from robustbench_snn.models.encoders import ENCODERS
from robustbench_snn.models.estimators import ESTIMATORS

EPS = 0.1


def _small_budget(name: str) -> dict:
    fields = {"attack": name, "eps": EPS, "steps": 2, "queries": 20}
    if get_attack(name).needs_source:
        fields["source"] = "twin"
    return fields


# AutoAttack's suites take minutes even on 16 images of a small SNN: run with the slow tests.
ATTACKS = [pytest.param(name, marks=pytest.mark.slow) if name.startswith("autoattack") else name for name in attack_names()]


@pytest.mark.parametrize("name", ATTACKS)
def test_every_attack_stays_in_the_ball_and_never_raises_robust_accuracy(name, shipped_models, fmnist_batch):
    images, labels = fmnist_batch
    model = shipped_models["fmnist_snn_direct"]
    spec = AttackSpec(**_small_budget(name))
    assert get_attack(name).label(spec).startswith(name), "a member's label starts with its attack's name"
    result = attack(model, images, labels, dataset="fashion-mnist", attack=Protocol(name=f"every-{name}", members=[spec]), seed=0)
    assert result.adversarial.shape == images.shape and result.adversarial.dtype == images.dtype
    assert (result.adversarial - images).abs().max() <= EPS + 1e-6
    assert 0 <= result.adversarial.min() and result.adversarial.max() <= 1
    assert not (result.robust & ~result.clean).any(), "a sample wrong on its clean input is never robust"
    assert get_attack(name).version >= 1


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_every_encoder_builds_a_model_whose_randomness_it_declares_truthfully(name):
    info = DATASETS["fashion-mnist"]
    params = {"sigma": 0.2, "variant": "I"} if name == "rsc" else {}
    model = build_classifier(ModelSpec("small_cnn", "snn", name, params, timesteps=2), info, seed=0).eval()
    encoder = ENCODERS[name]
    images = torch.rand(4, *info.input_shape)
    with torch.no_grad():
        logits = model(images)
        first, second = model.encoder(images, 2), model.encoder(images, 2)
    assert logits.shape == (4, info.num_classes) and torch.isfinite(logits).all()
    assert encoder.stochastic == (not torch.equal(first, second)), "stochastic exactly when two encodings differ"
    assert set(encoder.estimators) <= set(ESTIMATORS) and encoder.version >= 1
    assert encoder.family(params) and encoder.label(params)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_builds_an_snn_and_its_ann_twin_with_one_parameter_set(name):
    info = DATASETS["cifar10"] if name != "small_cnn" else DATASETS["fashion-mnist"]
    snn = build_classifier(ModelSpec(name, "snn", timesteps=1), info)
    ann = build_classifier(ModelSpec(name, "ann"), info)
    assert snn.state_dict().keys() == ann.state_dict().keys(), "the twin has the same parameters, names and shapes"
    with torch.no_grad():
        assert ann(torch.rand(2, *info.input_shape)).shape == (2, info.num_classes)
