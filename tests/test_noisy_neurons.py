"""TGO's noisy LIF neurons: the forward against a hand-computed case and its firing probability,
every gradient mode, the randomness found and seeded inside the network (not in its coding), the
deterministic relative, the energy counter, and the tgo recipe's constraint."""

import math

import pytest
import torch
from spikingjelly.activation_based import functional

from robustbench_snn import benchmark, load_model
from robustbench_snn.data import DATASETS
from robustbench_snn.energy import measure, summarise
from robustbench_snn.errors import UserError
from robustbench_snn.models import ModelSpec, NeuronConfig, SpikingActivation, build_classifier
from robustbench_snn.models.gradients import GRADIENT_MODES, GradientMode
from robustbench_snn.models.interface import is_stochastic
from robustbench_snn.models.noisy_neurons import NoisyActivation
from robustbench_snn.models.user import as_attackable
from robustbench_snn.training import TrainingConfig, build_recipe
from robustbench_snn.training.tgo import threshold_proximity

TGO = ModelSpec("small_cnn", "snn", timesteps=4, neuron=NeuronConfig(params={"noise_sigma": 0.2}))


def test_the_noisy_neuron_fires_on_its_potential_plus_its_own_noise_as_computed_by_hand():
    layer = NoisyActivation(3, NeuronConfig(params={"noise_sigma": 0.5}), seed=7)
    noise = 0.5 * torch.randn((3, 2), generator=torch.Generator().manual_seed(7))
    # tau 2, threshold 1, hard reset to 0, a constant input 1.5 to two neurons: charge h = u + (1.5 - u) / 2
    expected, potential = [], torch.zeros(2)
    for step in range(3):
        charged = potential + (1.5 - potential) / 2
        spike = (charged - 1 + noise[step] >= 0).float()
        potential = charged * (1 - spike)
        expected.append(spike)
    assert torch.equal(layer(torch.full((3 * 1, 2), 1.5)), torch.stack(expected))
    assert SpikingActivation(3, NeuronConfig())(torch.full((3, 1), 1.5)).flatten().tolist() == [0, 1, 0]


def test_a_neuron_below_its_threshold_fires_with_the_probability_of_its_noise():
    # First step of a resting neuron driven by 1.5: h = 0.75, so it fires with probability Phi(-0.25 / sigma)
    sigma, neurons = 0.2, 40_000
    layer = NoisyActivation(1, NeuronConfig(params={"noise_sigma": sigma}), seed=0)
    rate = layer(torch.full((1, neurons), 1.5)).mean().item()
    assert rate == pytest.approx(0.5 * (1 + math.erf(-0.25 / sigma / math.sqrt(2))), abs=0.01)


@pytest.mark.parametrize("mode", list(GRADIENT_MODES))
def test_with_vanishing_noise_every_gradient_mode_is_the_lifs(mode):
    torch.manual_seed(0)
    currents = 2 * torch.randn(4 * 5, 3, 6, 6)
    weights = torch.arange(currents.numel()).view_as(currents).float().sin()
    outputs, gradients = [], []
    for layer in (NoisyActivation(4, NeuronConfig(params={"noise_sigma": 1e-9})), SpikingActivation(4, NeuronConfig())):
        functional.reset_net(layer)
        layer.set_gradient(GradientMode(mode=mode))
        layer.rate_mode = mode == "act"
        inputs = currents.clone().requires_grad_()
        output = layer(inputs)
        (output * weights).sum().backward()
        outputs.append(output)
        gradients.append(inputs.grad)
    assert torch.equal(outputs[0], outputs[1]) and gradients[1].abs().sum() > 0
    assert torch.allclose(gradients[0], gradients[1], atol=1e-5)


def noisy_zoo_snn() -> torch.nn.Module:
    """The zoo's direct SNN with its LIF neurons made noisy: a trained network whose noise shows in its logits."""
    model = build_classifier(TGO, DATASETS["fashion-mnist"], seed=0).eval()
    model.load_state_dict(load_model("fmnist_snn_direct").state_dict())
    return model


def test_a_direct_coded_model_with_noisy_neurons_is_stochastic_seeded_and_has_a_noise_free_relative(fmnist_batch):
    images, _ = fmnist_batch
    model = noisy_zoo_snn()
    assert is_stochastic(model) and not model.encoder.stochastic
    with torch.no_grad():
        first, second = model(images), model(images)
        model.seed(5)
        again = model(images)
        model.seed(5)
        assert not torch.equal(first, second) and torch.equal(model(images), again)
        relative = model.expectation_relative()
        assert not is_stochastic(relative) and torch.equal(relative(images), relative(images))
        assert not torch.equal(relative(images), first)
        assert torch.equal(relative(images), load_model("fmnist_snn_direct")(images))
    assert is_stochastic(model)  # the relative's noise-free firing never leaks into the model


def test_the_runner_attacks_a_noisy_network_with_eot_and_decides_it_over_draws(fmnist_batch):
    model = noisy_zoo_snn()
    record = benchmark(model, dataset="fashion-mnist", attack="pgd", n_examples=8, seed=0, overrides={"steps": 1, "eot": 2})
    assert record.stochastic and record.eot == 2
    single = benchmark(model, dataset="fashion-mnist", attack="paper-tgo", n_examples=8, seed=0)
    assert "stochastic_without_eot" in single.flags
    repeated = benchmark(model, dataset="fashion-mnist", attack="paper-tgo", n_examples=8, seed=0)
    assert repeated.robust_accuracy == single.robust_accuracy


def test_the_energy_counter_counts_a_noisy_networks_spikes_over_draws(fmnist_batch):
    images, _ = fmnist_batch
    model = build_classifier(TGO, DATASETS["fashion-mnist"], seed=0).eval()
    energy = summarise([measure(model, images, draws=2, seed=0)])
    assert energy["synops"] > 0 and energy["spikes"] > 0


def test_a_neuron_adapts_its_threshold_or_fires_noisily_not_both():
    with pytest.raises(UserError, match="noise_sigma is a parameter of noisy neurons; threshold_tau is a parameter of adaptive-threshold"):
        NeuronConfig(params={"threshold_tau": 2.0, "noise_sigma": 0.2})
    with pytest.raises(UserError, match="greater than 0"):
        NeuronConfig(params={"noise_sigma": 0.0})
    with pytest.raises(UserError, match="noisy neurons need --noise-sigma"):
        NeuronConfig(type="noisy")
    with pytest.raises(UserError, match="threshold_tau: not a parameter of noisy neurons"):
        NeuronConfig(type="noisy", params={"noise_sigma": 0.2, "threshold_tau": 2.0})
    assert "noise_sigma" not in NeuronConfig().as_dict() and NeuronConfig(params={"noise_sigma": 0.2}).as_dict()["noise_sigma"] == 0.2


def test_a_users_model_that_says_it_is_stochastic_needs_a_seed():
    class Noisy(torch.nn.Module):
        stochastic = True

        def forward(self, images):
            return images.flatten(1)[:, :10] + torch.randn(len(images), 10)

    with pytest.raises(UserError, match="seed"):
        as_attackable(Noisy(), torch.zeros(1, 1, 28, 28))


def test_the_tgo_constraint_penalises_potentials_near_the_threshold_and_ramps_up(fmnist_batch):
    images, labels = fmnist_batch
    assert threshold_proximity(torch.tensor([0.0, 0.1, -0.2, 0.5, -1.0]), 0.3).item() == pytest.approx((0.3 + 0.2 + 0.1) / 5)
    model = build_classifier(TGO, DATASETS["fashion-mnist"], seed=0).train()
    recipe = build_recipe(model, TGO, "fashion-mnist", TrainingConfig(recipe="tgo"), "cpu")
    recipe.total_steps = 10
    assert recipe.weight_at(0) == pytest.approx(0.1) and recipe.weight_at(9) == recipe.weight_at(20) == 1.0
    loss = recipe(model, images, labels, step=9)
    assert loss.parts["proximity"] > 0 and loss.total.item() == pytest.approx(loss.parts["ce"] + loss.parts["proximity"], rel=1e-5)
    loss.total.backward()
    assert model.backbone[0].weight.grad.abs().sum() > 0
    assert all(layer.potential_gaps is None for layer in model.spiking_layers)
    with pytest.raises(UserError, match="--noise-sigma"):
        build_recipe(model, ModelSpec("small_cnn", "snn", timesteps=4), "fashion-mnist", TrainingConfig(recipe="tgo"), "cpu")
