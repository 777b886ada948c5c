"""SNNs written the way snnTorch, Norse and sinabs tutorials write them: recognised as SNNs (state
reset, spikes and SynOps counted, BPTT through their own surrogate), never attacked as ANNs."""

import norse.torch as norse  # the test extra installs the three libraries
import pytest
import sinabs.layers as sinabs_layers
import snntorch
import torch
from torch import nn

from robustbench_snn import ReadOut, attack, benchmark
from robustbench_snn.energy import measure_energy
from robustbench_snn.errors import UserError
from robustbench_snn.evaluation.plan import plan_members, resolve_protocol
from robustbench_snn.models.libraries import reset_library_neurons
from robustbench_snn.models.user import as_attackable

STEPS = 4


class SnnTorchNet(nn.Module):
    """The snnTorch tutorial's convnet: ``init_hidden`` neurons, the user's own time loop, and the
    ``(spk_rec, mem_rec)`` it returns."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv2d(1, 4, 5),
            nn.MaxPool2d(2),
            snntorch.Leaky(beta=0.5, init_hidden=True),
            nn.Flatten(),
            nn.Linear(4 * 12 * 12, 10),
            snntorch.Leaky(beta=0.5, init_hidden=True, output=True),
        )
        with torch.no_grad():
            self.net[0].weight.mul_(4)

    def forward(self, images):
        spikes, membranes = [], []
        for _ in range(STEPS):
            spike, membrane = self.net(images)
            spikes.append(spike)
            membranes.append(membrane)
        return torch.stack(spikes), torch.stack(membranes)


class NorseNet(nn.Module):
    """Norse's tutorial style: a ``SequentialState`` of cells, state threaded through the user's loop."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 32))
        self.cell = norse.LIFCell(p=norse.LIFParameters(v_th=torch.tensor(0.05)))
        self.readout = nn.Linear(32, 10)

    def forward(self, images):
        state, outputs = None, []
        current = self.features(images) * 5
        for _ in range(STEPS):
            spikes, state = self.cell(current, state)
            outputs.append(self.readout(spikes))
        return torch.stack(outputs)


class SinabsNet(nn.Module):
    """sinabs: ``IAF`` layers holding their state, time folded by the user's loop."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 32), sinabs_layers.IAF(), nn.Linear(32, 10))

    def forward(self, images):
        return torch.stack([self.net(images * 3) for _ in range(STEPS)])


@pytest.fixture(scope="module", params=[SnnTorchNet, NorseNet, SinabsNet], ids=["snntorch", "norse", "sinabs"])
def user_snn(request):
    return request.param().eval()


def test_each_library_is_recognised_as_an_snn_with_spikes_counted(user_snn, fmnist_batch):
    images, labels = fmnist_batch
    record = benchmark(user_snn, dataset="fashion-mnist", attack="pgd", n_examples=16, seed=0)
    assert record.energy["clean"]["spikes"] > 0 and record.energy["clean"]["synops"] > 0
    assert record.grad == "bptt"  # an SNN's gradient mode, not an ANN's plain backprop
    result = attack(user_snn, images, labels, dataset="fashion-mnist", attack="pgd", seed=0)
    assert ((result.adversarial - images).abs() <= 0.1 + 1e-6).all()
    assert result.robust_accuracy <= result.clean.float().mean()


def test_library_state_is_reset_between_forwards(user_snn, fmnist_batch):
    from robustbench_snn.models.user import as_attackable

    images, _ = fmnist_batch
    model = as_attackable(user_snn, images[:8])
    with torch.no_grad():
        assert torch.equal(model(images), model(images))


def test_modes_a_library_neuron_cannot_take_are_skipped_with_the_reason(fmnist_batch):
    images, labels = fmnist_batch
    result = attack(SnnTorchNet().eval(), images, labels, dataset="fashion-mnist", attack="reliable", seed=0)
    network = as_attackable(SnnTorchNet().eval(), images)
    runnable, _, _ = plan_members(network, resolve_protocol("reliable", None, "fashion-mnist"), images[:1], "cpu", 0, "fashion-mnist")
    assert result.attacks == [member.label() for member in runnable]  # every member the library's neurons can take runs
    assert all(member.grad == "bptt" for member in runnable if member.uses_gradients)
    assert "pgd-10[bptt]" in result.attacks and "pgd-10[bptt-sigmoid]" not in result.attacks  # one surrogate: the library's
    assert any("rga" in reason and "supports bptt" in reason for reason in result.skipped)


def test_snntorch_spikes_and_synops_equal_a_hand_count():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.Linear(2, 2, bias=False)
            self.neuron = snntorch.Leaky(beta=0.5, threshold=1.0, init_hidden=True)
            self.second = nn.Linear(2, 3, bias=False)
            with torch.no_grad():
                self.first.weight.copy_(torch.tensor([[1.2, 0.0], [0.0, 0.6]]))
                self.second.weight.fill_(1.0)

        def forward(self, images):
            return torch.stack([self.second(self.neuron(self.first(images.flatten(1)))) for _ in range(2)])

    # currents 1.2 and 0.6 per step; step 1: mem 1.2 (spike), 0.6; step 2: 0.5 * 1.2 + 1.2 - 1 = 0.8, 0.3 + 0.6 = 0.9: no spike
    counts = measure_energy(Tiny(), torch.tensor([[[[1.0, 1.0]]]]))
    assert counts["spikes"] == 1
    assert counts["synops"] == 1 * 3  # one spike drives the second layer's 3 outputs
    assert counts["macs"] == 2 * 4  # the first layer, on real values, at both steps


def test_a_network_over_time_with_unknown_neurons_is_averaged_with_a_warning(fmnist_batch, caplog):
    class OverTime(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(28 * 28, 10)

        def forward(self, images):
            return torch.stack([self.linear(images.flatten(1)) * (step + 1) for step in range(STEPS)])

    images, labels = fmnist_batch
    result = attack(OverTime(), images, labels, dataset="fashion-mnist", attack="pgd", seed=0)
    assert result.clean.shape == (16,)
    assert "attacked as a network over time" in caplog.text


def test_a_readout_reads_outputs_over_time_as_the_user_means_them_and_is_a_model_of_its_own(tmp_path):
    network, images = SnnTorchNet(), torch.rand(16, 1, 28, 28)

    def fresh(module):  # a direct call, so reset snnTorch's hidden state first as the benchmark does
        reset_library_neurons(module)
        with torch.no_grad():
            return module(images)

    spikes, membranes = fresh(network)
    last_membrane = ReadOut(network, "last", element=1)
    assert torch.equal(fresh(last_membrane), membranes[-1])
    assert torch.equal(fresh(ReadOut(network, "sum")), spikes.sum(0))
    assert torch.equal(fresh(ReadOut(NorseNet(), "max")), fresh(NorseNet()).max(0).values)
    labels = fresh(last_membrane).argmax(1)
    assert not torch.equal(labels, membranes.mean(0).argmax(1)), "the last membrane decides otherwise than the mean"
    run = dict(dataset="fashion-mnist", attack="pgd", n_examples=32, overrides={"steps": 2}, store=True, results_dir=tmp_path)
    meant, default = benchmark(last_membrane, **run, model_name="mine"), benchmark(network, **run, model_name="mine")
    assert meant.config_hash != default.config_hash and not default.reused, "two readouts are two models"
    assert meant.energy["clean"]["spikes"] > 0 and meant.grad == "bptt"
    for bad in (lambda: ReadOut(network, "median"), lambda: ReadOut(network, element=-1), lambda: ReadOut(NorseNet(), element=1)(images)):
        with pytest.raises(UserError):
            bad()
