"""Extending the benchmark: a new attack or a new encoder is one new class, registered from the
module that defines it (the example plug-in's attack module; this test's encoder), with no other
file touched."""

import importlib
import sys
from pathlib import Path

import pytest
import torch
from pydantic import Field

from robustbench_snn import benchmark
from robustbench_snn.attacks import AttackSpec, Protocol, build_protocol
from robustbench_snn.attacks import attack as attack_registry
from robustbench_snn.config import Strict
from robustbench_snn.data import DATASETS
from robustbench_snn.errors import UserError
from robustbench_snn.models import GradientMode, ModelSpec, build_classifier
from robustbench_snn.models import encoders as encoder_registry
from robustbench_snn.models.encoders import Encoder
from robustbench_snn.registry import load_model
from robustbench_snn.registry.cards import parse_card


@pytest.fixture
def toy_attack(monkeypatch):
    """The example plug-in's attack (a corner of the eps-ball chosen by the seed, no gradients),
    registered by importing the module that defines it, for one test."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "examples" / "plugin"))
    module = importlib.import_module("rsc_bench_example.corner")
    yield module.RandomCorner
    attack_registry.ATTACKS.unregister("example-corner")
    sys.modules.pop("rsc_bench_example.corner")


@pytest.fixture
def toy_encoder():
    """A toy encoder: a deterministic threshold coding with one validated parameter, registered for one test."""

    class ThresholdParameters(Strict):
        level: float = Field(gt=0, lt=1)

    class ThresholdEncoder(Encoder, name="toy-threshold"):
        Parameters = ThresholdParameters
        family_name = "threshold SNN"

        def __init__(self, level: float) -> None:
            super().__init__()
            self.level = level

        def forward(self, images, timesteps):
            spikes = (images > self.level).to(images.dtype)
            frame = images + (spikes - images).detach()  # straight-through, so attacks get a gradient
            return frame.unsqueeze(0).expand(timesteps, *images.shape)

    yield ThresholdEncoder
    encoder_registry.ENCODERS.unregister("toy-threshold")


def test_a_new_attack_is_one_class_and_runs_in_a_protocol(toy_attack):
    member = AttackSpec(attack="example-corner", eps=0.1)
    assert member.label() == "example-corner[bptt]" and not member.white_box
    with pytest.raises(ValueError, match="example-corner fixes its own loss"):
        AttackSpec(attack="example-corner", loss="cw")
    assert [m.attack for m in build_protocol("example-corner").members] == ["example-corner"]

    members = [AttackSpec(attack="example-corner", eps=1.0), AttackSpec(attack="pgd", steps=1, eps=0.01)]
    record = benchmark(load_model("fmnist_ann"), attack=Protocol(name="mine", members=members), n_examples=32)
    # black-box members run after the white-box ones, on the samples they left
    assert record.attacks == ["pgd-1", "example-corner"]  # on an ANN, labels name no SNN gradient mode
    # a weak PGD leaves most samples; corners of the whole input range fool them
    assert record.member_kills["example-corner"] > 0
    assert record.robust_accuracy < record.clean_accuracy


def test_an_unknown_attack_suggests_the_closest_names():
    with pytest.raises(UserError, match="did you mean pgd"):
        build_protocol("pgdd")


def test_a_new_encoder_is_one_class_used_by_models_and_cards(toy_encoder, card_data):
    spec = ModelSpec("small_cnn", "snn", encoding="toy-threshold", encoding_params={"level": 0.5}, timesteps=2)
    torch.manual_seed(0)
    model = build_classifier(spec, DATASETS["fashion-mnist"])
    assert isinstance(model.encoder, toy_encoder) and not model.stochastic
    record = benchmark(model, dataset="fashion-mnist", attack="pgd", overrides={"steps": 2}, n_examples=16, model_name="toy")
    assert record.attacks == ["pgd-2[bptt]"] and record.robust_accuracy <= record.clean_accuracy

    with pytest.raises(UserError, match="level"):
        build_classifier(
            ModelSpec("small_cnn", "snn", encoding="toy-threshold", encoding_params={"level": 2}, timesteps=2), DATASETS["fashion-mnist"]
        )
    card = parse_card(
        {
            **card_data,
            "kind": "snn",
            "timesteps": 2,
            "encoding": {"name": "toy-threshold", "level": 0.3},
            "neuron": {"tau": 2.0, "v_threshold": 1.0, "v_reset": 0.0, "surrogate": "atan", "surrogate_alpha": 2.0, "detach_reset": False},
        },
        "card",
    )
    assert card.encoding.family() == "threshold SNN" and card.spec().encoding_params == {"level": 0.3}
    with pytest.raises(UserError, match="level"):
        parse_card({**card_data, "encoding": {"name": "toy-threshold", "level": 7}}, "card")


def test_a_new_surrogate_is_one_registration_and_every_path_differentiates_with_it():
    from spikingjelly.activation_based import surrogate

    from robustbench_snn.models.gradients import SURROGATES, Surrogate, register_surrogate

    register_surrogate("toy-atan", Surrogate(surrogate.ATan, surrogate.atan_backward, 3.0))
    try:
        with pytest.raises(TypeError, match="already registered"):
            register_surrogate("atan", SURROGATES["sigmoid"])
        model = load_model("fmnist_snn_direct")
        images = torch.rand(4, 1, 28, 28, requires_grad=True)
        gradients = []
        for compiled in (False, True):
            model.compile_lif(compiled)
            with model.using_gradient(GradientMode("bptt", "toy-atan", 3.0)):
                (gradient,) = torch.autograd.grad(model(images).sum(), images)
            gradients.append(gradient)
        with model.using_gradient(GradientMode("bptt", "atan", 3.0)):
            (reference,) = torch.autograd.grad(model(images).sum(), images)
        assert torch.allclose(gradients[0], gradients[1], atol=1e-5), "the compiled kernel uses the new surrogate too"
        assert torch.equal(gradients[1], reference), "the same arithmetic as the built-in it wraps"
        assert AttackSpec(attack="pgd", surrogate="toy-atan").label() == "pgd-10[bptt-toy-atan]"
    finally:
        SURROGATES.unregister("toy-atan")
