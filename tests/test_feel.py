"""FEEL-SNN: the frequency coding and the evolutionary-leak neurons against hand-computed cases,
every gradient mode, the feel recipe's checks and the paper's own evaluation as a preset."""

import pytest
import torch
from spikingjelly.activation_based import functional

from robustbench_snn import benchmark
from robustbench_snn.attacks import build_protocol
from robustbench_snn.data import DATASETS, dataset_info
from robustbench_snn.energy import measure, summarise
from robustbench_snn.errors import UserError
from robustbench_snn.models import ModelSpec, NeuronConfig, SpikingActivation, build_classifier
from robustbench_snn.models.encoders import FrequencyEncoder, low_pass_masks
from robustbench_snn.models.evolving_leak import EvolvingLeakActivation
from robustbench_snn.models.gradients import GRADIENT_MODES, GradientMode
from robustbench_snn.models.interface import is_stochastic
from robustbench_snn.training import TrainingConfig, build_recipe

FEEL = ModelSpec("small_cnn", "snn", "frequency", timesteps=4, neuron=NeuronConfig(surrogate="triangle", params={"leak_init": 1.0}))


def test_the_frequency_coding_narrows_its_low_pass_window_step_by_step():
    # the authors' windows on CIFAR (32 pixels, T = 8): half-widths 16, 14, ..., 2; ours on 28 pixels, T = 4
    assert [int(mask.sum().sqrt()) // 2 for mask in low_pass_masks((32, 32), 8)] == [16, 14, 12, 10, 8, 6, 4, 2]
    assert [int(mask.sum().sqrt()) // 2 for mask in low_pass_masks((28, 28), 4)] == [14, 11, 7, 4]
    torch.manual_seed(0)
    images = torch.rand(2, 1, 28, 28)
    steps = FrequencyEncoder()(images, 4)
    assert steps.shape == (4, 2, 1, 28, 28) and torch.allclose(steps[0], images, atol=1e-5)  # the whole spectrum
    grey = torch.full((1, 1, 28, 28), 0.3)
    assert torch.allclose(FrequencyEncoder()(grey, 4), grey.expand(4, 1, 1, 28, 28), atol=1e-6)  # only the mean
    rows, columns = torch.meshgrid(torch.arange(28), torch.arange(28), indexing="ij")
    checkerboard = (0.5 + 0.5 * (-1.0) ** (rows + columns)).view(1, 1, 28, 28)  # the highest frequency, mean 0.5
    assert torch.allclose(FrequencyEncoder()(checkerboard, 4)[1:], torch.full((3, 1, 1, 28, 28), 0.5), atol=1e-5)


def test_the_frequency_coding_is_differentiable_end_to_end():
    images = torch.rand(2, 1, 28, 28, requires_grad=True)
    FrequencyEncoder()(images, 4)[3].sum().backward()
    assert images.grad is not None and torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0


def one_neuron(leak: float) -> EvolvingLeakActivation:
    layer = EvolvingLeakActivation(4, NeuronConfig(params={"leak_init": leak}))
    layer(torch.zeros(4, 1))
    return layer


def test_the_learned_leak_charges_as_computed_by_hand():
    drive = torch.full((4, 1), 0.6)
    # leak 0.5: h = 0.6, 0.9, 1.05 (fires, resets to 0), 0.6
    assert one_neuron(0.5)(drive).flatten().tolist() == [0, 0, 1, 0]
    # leak 1 (the authors' start: no leak): 0.6, 1.2 (fires), 0.6, 1.2 (fires)
    assert one_neuron(1.0)(drive).flatten().tolist() == [0, 1, 0, 1]
    layer = one_neuron(1.0)
    with torch.no_grad():
        layer.leak[1].fill_(0.1)  # each step has its own leak: 0.6, 0.66, 1.26 (fires), 0.6
    assert layer(drive).flatten().tolist() == [0, 0, 1, 0]


@pytest.mark.parametrize("mode", list(GRADIENT_MODES))
def test_every_gradient_mode_runs_and_those_through_the_recurrence_match_the_lif_at_its_leak(mode):
    torch.manual_seed(0)
    tau = 2.0
    currents = 2 * torch.randn(4 * 5, 3, 6, 6)
    weights = torch.arange(currents.numel()).view_as(currents).float().sin()
    layers = {
        "leak": EvolvingLeakActivation(4, NeuronConfig(params={"leak_init": 1 - 1 / tau})),
        "lif": SpikingActivation(4, NeuronConfig(tau=tau)),
    }
    outputs, gradients = {}, {}
    for name, layer in layers.items():
        functional.reset_net(layer)
        layer.set_gradient(GradientMode(mode=mode))
        layer.rate_mode = mode == "act"
        inputs = currents.clone().requires_grad_()
        # the LIF charges u (1 - 1/tau) + x / tau: the learned leak at 1 - 1/tau fed x / tau is the same neuron
        outputs[name] = layer(inputs / tau if name == "leak" else inputs)
        (outputs[name] * weights).sum().backward()
        gradients[name] = inputs.grad
    assert torch.isfinite(gradients["leak"]).all() and gradients["leak"].abs().sum() > 0
    if mode != "act":
        assert torch.equal(outputs["leak"], outputs["lif"])
    if mode in ("bptt", "pdsg", "assg"):  # exact BPTT through the recurrence; the rate models are approximations
        assert torch.allclose(gradients["leak"], gradients["lif"], atol=1e-5)


def test_bptt_reaches_the_leaks_and_a_feel_classifier_runs_counts_energy_and_is_deterministic(fmnist_batch):
    images, _ = fmnist_batch
    torch.manual_seed(0)
    model = build_classifier(FEEL, DATASETS["fashion-mnist"], seed=0).train()
    model(images).sum().backward()
    assert all(layer.leak.grad is not None and layer.leak.grad.abs().sum() > 0 for layer in model.spiking_layers)
    model.eval()
    assert not is_stochastic(model) and model.expectation_relative() is None
    assert summarise([measure(model, images)])["synops"] >= 0
    quick = {"steps": 1, "queries": 5, "checks": False}
    record = benchmark(model, dataset="fashion-mnist", attack="reliable", n_examples=4, seed=0, overrides=quick)
    assert not record.skipped_members and "reduced_protocol" not in record.flags


def test_the_feel_recipe_needs_its_coding_and_its_neurons():
    model = build_classifier(FEEL, DATASETS["fashion-mnist"], seed=0)
    build_recipe(model, FEEL, "fashion-mnist", TrainingConfig(recipe="feel"), "cpu")
    with pytest.raises(UserError, match="--encoding frequency --leak-init"):
        build_recipe(model, ModelSpec("small_cnn", "snn", timesteps=4), "fashion-mnist", TrainingConfig(recipe="feel"), "cpu")
    with pytest.raises(UserError, match="no one neuron type takes leak_init, noise_sigma"):
        NeuronConfig(params={"leak_init": 1.0, "noise_sigma": 0.2})
    with pytest.raises(UserError, match="leak_init': Input should be less than or equal to 1"):
        NeuronConfig(params={"leak_init": 1.5})
    # a surrogate named without its sharpness has its own default (the authors' triangle of half-width 1), not atan's 2
    assert FEEL.neuron.surrogate_alpha == 1.0 and NeuronConfig().surrogate_alpha == 2.0


def test_the_feel_preset_runs_the_attacks_its_authors_test_configuration_states():
    protocol = build_protocol("paper-feel").resolved(dataset_info("fashion-mnist"))
    fgsm, pgd, bim = protocol.members
    assert (fgsm.attack, pgd.attack, bim.attack) == ("fgsm", "pgd", "pgd") and pgd.steps == bim.steps == 7
    assert pgd.random_start and not bim.random_start  # PGD from a random start, BIM from the clean input
    from robustbench_snn.attacks.methods.pgd import step_size_of

    assert step_size_of(pgd, pgd.steps) == step_size_of(bim, bim.steps) == pytest.approx(2.55 / 8 * 0.1, rel=1e-3)
    for member in protocol.members:
        assert (member.grad, member.surrogate, member.eot, member.loss) == ("bptt", None, 1, "ce")
    assert protocol.eval_draws == 1 and not protocol.checks and protocol.later_members == []
