"""HoSNN's threshold-adapting LIF neurons: the forward against hand-computed spikes, every gradient
mode at the neuron's own threshold, checkpoints, the energy counter and an evaluation of a tiny
model, and the hosnn recipe starting from a clean zoo SNN."""

import pytest
import torch
from spikingjelly.activation_based import functional

from robustbench_snn import benchmark
from robustbench_snn.data import DATASETS
from robustbench_snn.energy import measure, summarise
from robustbench_snn.errors import UserError
from robustbench_snn.evaluation.plan import model_hash
from robustbench_snn.models import ModelSpec, NeuronConfig, SpikingActivation, build_classifier
from robustbench_snn.models.adaptive_threshold import AdaptiveThresholdActivation
from robustbench_snn.models.gradients import GRADIENT_MODES, GradientMode
from robustbench_snn.models.interface import is_stochastic
from robustbench_snn.training import TrainingConfig, build_recipe

HOSNN = ModelSpec("small_cnn", "snn", timesteps=4, neuron=NeuronConfig(params={"threshold_tau": 1.5}))


def one_neuron(rate: float, target: float, steps: int = 3) -> AdaptiveThresholdActivation:
    layer = AdaptiveThresholdActivation(steps, NeuronConfig(params={"threshold_tau": 2.0}))
    layer(torch.zeros(steps, 1))
    with torch.no_grad():
        layer.rate.fill_(rate)
        layer.target.fill_(target)
    return layer


def test_the_threshold_moves_with_the_potential_as_computed_by_hand():
    # tau 2, threshold 1, a constant input 1.5: the charge h = u + (1.5 - u) / 2 gives 0.75, 1.125, ...
    drive = torch.full((3, 1), 1.5)
    lif = SpikingActivation(3, NeuronConfig())
    assert lif(drive).flatten().tolist() == [0, 1, 0]  # 0.75; 1.125 fires and resets; 0.75
    # rate 0.5, target 0: the threshold climbs 1.375, 1.9375, 2.59 above h = 0.75, 1.125, 1.3125: silent
    assert one_neuron(0.5, 0.0)(drive).flatten().tolist() == [0, 0, 0]
    # target 1.2: thresholds 0.775 (h 0.75: silent), 0.7375 (h 1.125: fires), 0.5125 (h 0.75: fires)
    assert one_neuron(0.5, 1.2)(drive).flatten().tolist() == [0, 1, 1]
    assert one_neuron(0.0, 1.2)(drive).flatten().tolist() == [0, 1, 0]  # no adaptation: the LIF


@pytest.mark.parametrize("mode", list(GRADIENT_MODES))
def test_with_a_zero_rate_every_gradient_mode_is_the_lifs(mode):
    torch.manual_seed(0)
    currents = 2 * torch.randn(4 * 5, 3, 6, 6)
    adaptive, lif = AdaptiveThresholdActivation(4, NeuronConfig(params={"threshold_tau": 2.0})), SpikingActivation(4, NeuronConfig())
    adaptive(currents)
    with torch.no_grad():
        adaptive.rate.zero_()
    weights = torch.arange(currents.numel()).view_as(currents).float().sin()
    gradients = []
    for layer in (adaptive, lif):
        functional.reset_net(layer)
        layer.set_gradient(GradientMode(mode=mode))
        layer.rate_mode = mode == "act"
        inputs = currents.clone().requires_grad_()
        (layer(inputs) * weights).sum().backward()
        gradients.append(inputs.grad)
    assert gradients[1].abs().sum() > 0
    assert torch.allclose(gradients[0], gradients[1], atol=1e-5)


def test_bptt_reaches_the_adaptation_rate_and_the_threshold_changes_the_input_gradient():
    torch.manual_seed(0)
    currents = (2 * torch.randn(4 * 5, 8)).requires_grad_()
    layer = AdaptiveThresholdActivation(4, NeuronConfig(params={"threshold_tau": 2.0}))
    layer(currents).sum().backward()
    assert layer.rate.grad is not None and layer.rate.grad.abs().sum() > 0
    adapted = currents.grad.clone()
    currents.grad = None
    with torch.no_grad():
        layer.rate.zero_()
    layer(currents).sum().backward()
    assert not torch.allclose(adapted, currents.grad)


def test_a_hosnn_classifier_round_trips_a_checkpoint_runs_eagerly_and_counts_its_energy(fmnist_batch):
    images, labels = fmnist_batch
    torch.manual_seed(0)
    model = build_classifier(HOSNN, DATASETS["fashion-mnist"], seed=0).eval()
    with torch.no_grad():
        model(images[:1])
        for layer in model.spiking_layers:
            layer.target.normal_()
    fresh = build_classifier(HOSNN, DATASETS["fashion-mnist"], seed=0).eval()
    fresh.load_state_dict(model.state_dict())
    assert all(isinstance(layer, AdaptiveThresholdActivation) for layer in fresh.spiking_layers)
    assert torch.equal(fresh(images), model(images)) and model_hash(fresh) == model_hash(model)
    fresh.compile_lif()
    assert not any(layer.compiled for layer in fresh.spiking_layers)  # the kernel is the fixed-threshold LIF's
    energy = summarise([measure(fresh, images)])
    assert energy["synops"] > 0 and energy["spikes"] > 0
    assert (
        NeuronConfig().as_dict() == NeuronConfig(params={"threshold_tau": None}).as_dict()
        and "threshold_tau" not in NeuronConfig().as_dict()
    )


def test_a_hosnn_model_is_deterministic_and_every_member_of_reliable_runs_on_it(fmnist_batch):
    torch.manual_seed(0)
    model = build_classifier(HOSNN, DATASETS["fashion-mnist"], seed=0).eval()
    record = benchmark(
        model, dataset="fashion-mnist", attack="reliable", n_examples=8, seed=0, overrides={"steps": 1, "queries": 10, "checks": False}
    )
    assert not is_stochastic(model) and not record.stochastic
    assert record.protocol == "reliable-custom" and not record.skipped_members and "reduced_protocol" not in record.flags
    assert {"pgd-1[rga]", "pgd-1[hart@1]"} <= set(record.attacks)


def test_hosnn_starts_from_the_clean_snns_weights_and_signatures_and_keeps_rates_non_negative(fmnist_batch):
    from robustbench_snn.models.adaptive_threshold import recorded_potentials
    from robustbench_snn.registry import load_model

    images, labels = fmnist_batch
    model = build_classifier(HOSNN, DATASETS["fashion-mnist"], seed=0)
    recipe = build_recipe(
        model, HOSNN, "fashion-mnist", TrainingConfig(recipe="hosnn", options={"clean_model": "fmnist_snn_direct"}), "cpu"
    )
    assert recipe.spec.attack == "fgsm" and recipe.spec.eps == pytest.approx(DATASETS["fashion-mnist"].linf_eps / 4)
    recipe.prepare(model, [images[:10], images[10:]])
    clean = load_model("fmnist_snn_direct")
    assert torch.equal(model.backbone[0].weight, clean.backbone[0].weight)
    first = clean.spiking_layers[0]
    inputs = clean.backbone[: list(clean.backbone).index(first)]((images.repeat(4, 1, 1, 1) - clean.mean) / clean.std)
    assert torch.allclose(model.spiking_layers[0].target, recorded_potentials(first, inputs).mean(1), atol=1e-5)
    with torch.no_grad():
        model.spiking_layers[0].rate.fill_(-1.0)
    recipe.after_step(model)
    assert model.spiking_layers[0].rate.min() == 0
    with pytest.raises(UserError, match="--threshold-tau"):
        build_recipe(
            model,
            ModelSpec("small_cnn", "snn", timesteps=4),
            "fashion-mnist",
            TrainingConfig(recipe="hosnn", options={"clean_model": "fmnist_snn_direct"}),
            "cpu",
        )
    with pytest.raises(UserError, match="must be a LIF SNN"):
        build_recipe(model, HOSNN, "fashion-mnist", TrainingConfig(recipe="hosnn", options={"clean_model": "fmnist_ann"}), "cpu")
    with pytest.raises(UserError, match="--clean-model"):
        TrainingConfig(recipe="hosnn")
