"""spikingjelly networks written the way its own examples and tutorials write them: every neuron, in
both step modes, recognised and attacked as an SNN, spikes counted, never refused."""

import pytest
import torch
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from torch import nn

from robustbench_snn import benchmark
from robustbench_snn.data import load_dataset
from robustbench_snn.energy import measure_energy
from robustbench_snn.evaluation.plan import plan_members, resolve_protocol
from robustbench_snn.models.user import OwnNeuron, as_attackable, wrap_snn

STEPS = 4


class ConvFashionMNIST(nn.Module):
    """The shape of spikingjelly's convolutional Fashion-MNIST example: conv-BN-IF blocks with max
    pooling, two linear layers of IF neurons, multi-step mode set on the whole network, the image
    repeated over T steps and the output spikes' rate as the logits."""

    def __init__(self, make_neuron=lambda: neuron.IFNode(surrogate_function=surrogate.ATan()), channels: int = 4):
        super().__init__()
        torch.manual_seed(0)
        self.conv_fc = nn.Sequential(
            layer.Conv2d(1, channels, kernel_size=3, padding=1, bias=False),
            layer.BatchNorm2d(channels),
            make_neuron(),
            layer.MaxPool2d(2, 2),
            layer.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False),
            layer.BatchNorm2d(channels),
            make_neuron(),
            layer.MaxPool2d(2, 2),
            layer.Flatten(),
            layer.Linear(channels * 7 * 7, 32, bias=False),
            make_neuron(),
            layer.Linear(32, 10, bias=False),
            make_neuron(),
        )
        functional.set_step_mode(self, step_mode="m")
        with torch.no_grad():  # trained-like firing: enough input current to spike
            for module in self.conv_fc:
                if isinstance(module, (layer.Conv2d, layer.Linear)):
                    module.weight.mul_(3)

    def forward(self, images):
        sequence = images.unsqueeze(0).repeat(STEPS, 1, 1, 1, 1)
        return self.conv_fc(sequence).mean(0)


NEURONS = {
    "IFNode": lambda: neuron.IFNode(surrogate_function=surrogate.ATan()),
    "ParametricLIFNode": lambda: neuron.ParametricLIFNode(init_tau=2.0, surrogate_function=surrogate.ATan()),
    "LIFNode(decay_input=False)": lambda: neuron.LIFNode(tau=2.0, decay_input=False, surrogate_function=surrogate.Sigmoid()),
    "IFNode soft reset": lambda: neuron.IFNode(v_reset=None, surrogate_function=surrogate.PiecewiseQuadratic()),
    "LIFNode": lambda: neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan()),
}


def trained(network: nn.Module, steps: int = 40) -> nn.Module:
    """``network`` after a few Adam steps on test images past those evaluated, as its example trains
    (cross-entropy on the output rate, the state reset after every batch): enough to be right
    well above chance, so that an attack has something to take."""
    images, labels = load_dataset("fashion-mnist", "test", download=False).tensors
    optimiser = torch.optim.Adam(network.parameters(), lr=0.01)
    network.train()
    for step in range(steps):
        batch = slice(1000 + 64 * step, 1064 + 64 * step)
        optimiser.zero_grad()
        nn.functional.cross_entropy(network(images[batch]) * 10, labels[batch]).backward()
        optimiser.step()
        functional.reset_net(network)
    return network.eval()


@pytest.mark.parametrize("name", sorted(NEURONS))
def test_spikingjellys_example_network_is_an_snn_whatever_its_neurons(name, fmnist_batch):
    images, labels = fmnist_batch
    network = trained(ConvFashionMNIST(NEURONS[name]))
    model = as_attackable(network, images[:8])
    with torch.no_grad():
        assert torch.equal(model(images), network(images))  # the same forward as the user's own network
    functional.reset_net(network)
    assert measure_energy(model, images[:4])["spikes"] > 0
    overrides = {"steps": 2, "queries": 10, "checks": False}
    record = benchmark(network, dataset="fashion-mnist", attack="pgd", n_examples=16, batch_size=16, overrides={"steps": 2})
    assert record.clean_accuracy >= 0.4 and record.robust_accuracy < record.clean_accuracy
    assert record.grad == "bptt" and record.energy["clean"]["spikes"] > 0  # attacked and counted as an SNN
    reliable = benchmark(network, dataset="fashion-mnist", attack="reliable", n_examples=16, batch_size=16, overrides=overrides)
    assert reliable.robust_accuracy <= record.robust_accuracy


def test_neurons_the_gradient_modes_do_not_model_keep_their_dynamics_and_skip_those_modes_with_the_reason(fmnist_batch):
    images = fmnist_batch[0]
    model = wrap_snn(ConvFashionMNIST(NEURONS["ParametricLIFNode"]), stochastic=False)
    assert len(model.own_neurons) == 4 and not model.spiking_layers
    protocol = resolve_protocol("reliable", {"steps": 1}, "fashion-mnist")
    runnable, _, skipped = plan_members(model, protocol, images[:1], "cpu", 0, "fashion-mnist")
    assert {member.grad for member in runnable if member.uses_gradients and member.source is None} == {"bptt"}
    assert any("rga" in reason and "supports bptt" in reason for reason in skipped)


def test_the_decay_input_lif_runs_on_our_kernel_bit_identically_with_every_gradient_mode(fmnist_batch):
    images = fmnist_batch[0]
    network = ConvFashionMNIST(NEURONS["LIFNode"]).eval()
    model = wrap_snn(network, stochastic=False)
    assert len(model.spiking_layers) == 4 and not model.own_neurons
    with torch.no_grad():
        assert torch.equal(model(images), network(images))
    assert model.supported_gradients is None


def test_a_swapped_surrogate_reaches_a_kept_neuron_and_its_own_returns(fmnist_batch):
    from robustbench_snn.models.gradients import GradientMode

    images, labels = fmnist_batch
    model = wrap_snn(ConvFashionMNIST(NEURONS["IFNode"]), stochastic=False)
    own = model.own_neurons[0]
    trained = own.node.surrogate_function
    with model.using_gradient(GradientMode("bptt", "sigmoid", 8.0)):
        assert type(own.node.surrogate_function) is surrogate.Sigmoid
        inputs = images.clone().requires_grad_(True)
        torch.nn.functional.cross_entropy(model(inputs), labels).backward()
    assert inputs.grad.abs().sum() > 0
    assert own.node.surrogate_function is trained and isinstance(own, OwnNeuron)
