"""Energy: spikes, SynOps and MACs counted by hand on tiny networks, on the zoo, and in records."""

import json

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from conftest import model_with
from spikingjelly.activation_based import functional, layer, neuron
from spikingjelly.activation_based.op_counter import DispatchCounterMode, MACCounter, SynOpCounter
from torch import nn

from robustbench_snn import benchmark, load_model, load_test_set, measure_energy
from robustbench_snn.cli import main
from robustbench_snn.energy import CONSTANTS, energy_pj
from robustbench_snn.registry import list_cards
from robustbench_snn.store import load_rows
from robustbench_snn.tables import results_table

# A 3x3 image whose 2x2 windows, through weights of 2, give the currents 4, 1.5, 0.5 and 0: a LIF
# neuron (tau 2, threshold 1, hard reset) fed them for two steps fires 2, 1, 0 and 0 times.
IMAGE = torch.tensor([[1.0, 0.75, 0.0], [0.25, 0.0, 0.0], [0.0, 0.0, 0.0]]).view(1, 1, 3, 3)


class TwoSteps(nn.Module):
    """A user's multi-step spikingjelly SNN with direct coding over T = 2 steps."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.net = nn.Sequential(*layers)

    def forward(self, images):
        return self.net(images.unsqueeze(0).repeat(2, 1, 1, 1, 1))


def hand_set_network(pool: bool = False) -> nn.Module:
    """Conv 1->2 (2x2 kernel, channel 0 all 2, channel 1 all 0), LIF, [avg-pool 2,] flatten, linear to 3."""
    convolution = layer.Conv2d(1, 2, 2, bias=False, step_mode="m")
    readout = layer.Linear(2 if pool else 8, 3, bias=False, step_mode="m")
    with torch.no_grad():
        convolution.weight.zero_()
        convolution.weight[0].fill_(2.0)
        readout.weight.fill_(0.1)
    middle = [layer.AvgPool2d(2, step_mode="m")] if pool else []
    return TwoSteps(convolution, neuron.LIFNode(step_mode="m"), *middle, layer.Flatten(step_mode="m"), readout)


def test_synops_and_macs_of_a_hand_set_network_equal_the_hand_count():
    energy = measure_energy(hand_set_network(), IMAGE)
    first, spiking, readout = energy["layers"]
    # The real-valued image drives the convolution: 2x2 positions x 2 channels x 4 weights, the
    # same frame at both steps computed once.
    assert (first["input"], first["macs"], first["synops"]) == ("real values", 32, 0)
    assert (spiking["neurons"], spiking["steps"], spiking["spikes"]) == (8, 2, 3)
    assert spiking["firing_rate"] == pytest.approx(3 / 16)
    # Each of the 3 spikes drives the 3 readout synapses.
    assert (readout["input"], readout["synops"], readout["macs"]) == ("spikes", 9, 0)
    assert (energy["synops"], energy["macs"], energy["spikes"]) == (9, 32, 3)
    assert energy["energy_pj"] == pytest.approx(32 * 4.6 + 9 * 0.9)
    assert energy["constants"]["mac_pj"] == 4.6 and energy["constants"]["ac_pj"] == 0.9


def test_pooled_spikes_drive_the_next_layer_at_their_rate():
    readout = measure_energy(hand_set_network(pool=True), IMAGE)["layers"][-1]
    # 2x2 average pooling turns the 3 spikes into a rate of 3/4 per channel-step total; each unit
    # of it drives the 3 readout synapses (the firing rate x FLOPs convention).
    assert (readout["input"], readout["synops"], readout["macs"]) == ("spikes", pytest.approx(3 / 4 * 3), 0)


def test_a_spike_at_the_border_drives_only_the_synapses_that_read_it():
    network = TwoSteps(neuron.LIFNode(step_mode="m"), layer.Conv2d(1, 2, 3, padding=1, bias=False, step_mode="m"))
    corner, centre = torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 3, 3)
    corner[..., 0, 0] = centre[..., 1, 1] = 4.0  # the input neuron fires at both steps
    # A spike in the corner is read by 4 of the 9 output positions, one in the centre by all 9, in
    # each of 2 channels, at each of 2 steps.
    assert measure_energy(network, corner)["layers"][1]["synops"] == 4 * 2 * 2
    assert measure_energy(network, centre)["layers"][1]["synops"] == 9 * 2 * 2


def test_no_input_no_spikes_no_synops():
    energy = measure_energy(hand_set_network(), torch.zeros_like(IMAGE))
    assert energy["spikes"] == 0 and energy["firing_rate"] == 0 and energy["synops"] == 0
    assert energy["macs"] == 32, "the real-valued first layer still computes"


def test_synops_agree_with_spikingjelly_where_its_counter_applies():
    torch.manual_seed(0)
    network = TwoSteps(
        layer.Conv2d(1, 6, 3, padding=1, step_mode="m"),
        neuron.LIFNode(v_threshold=0.3, step_mode="m"),
        layer.Conv2d(6, 8, 3, stride=2, padding=1, step_mode="m"),
        neuron.LIFNode(v_threshold=0.3, step_mode="m"),
        layer.Flatten(step_mode="m"),
        layer.Linear(8 * 14 * 14, 10, step_mode="m"),
    )
    images = torch.rand(5, 1, 28, 28)
    synops, macs = SynOpCounter(), MACCounter()
    functional.reset_net(network)
    with DispatchCounterMode([synops, macs]), torch.no_grad():
        network(images)
    ours = measure_energy(network, images)
    assert ours["synops"] * len(images) == pytest.approx(synops.get_total())
    assert ours["spikes"] > 0
    # spikingjelly's counter computes the repeated first frame at every step; we count it once.
    assert ours["macs"] * len(images) * 2 == macs.get_total()


def test_an_ann_costs_its_macs_times_the_mac_constant(shipped_models, fmnist_batch):
    energy = measure_energy(model_with(shipped_models, kind="ann", encoding="direct"), fmnist_batch[0])
    # small_cnn by hand: conv 1->16 and 16->32 (3x3) at 28x28 and 14x14, linear 1568->128 and 128->10.
    assert energy["macs"] == 16 * 28 * 28 * 9 + 32 * 14 * 14 * 16 * 9 + 32 * 7 * 7 * 128 + 128 * 10
    assert energy["synops"] == 0 and energy["spikes"] == 0 and energy["firing_rate"] is None
    assert energy["energy_pj"] == pytest.approx(energy["macs"] * CONSTANTS["mac_pj"])


def test_codings_change_the_counts_in_the_expected_direction(shipped_models, fmnist_batch):
    images = fmnist_batch[0]
    direct = model_with(shipped_models, kind="snn", encoding="direct")
    counts = {"direct": measure_energy(direct, images)}
    for name in ("fmnist_snn_poisson", "fmnist_rsc1_s0.2", "fmnist_rsc2_s0.2"):
        counts[name] = measure_energy(shipped_models[name], images, draws=4)
    first_layer_macs = 16 * 28 * 28 * 9
    assert counts["direct"]["macs"] == first_layer_macs, "direct coding: the first layer once, the rest spike-driven"
    assert counts["fmnist_rsc1_s0.2"]["macs"] == first_layer_macs, "RSC-I: one noisy frame for all steps"
    assert counts["fmnist_rsc2_s0.2"]["macs"] == 4 * first_layer_macs, "RSC-II: a fresh frame at each of T = 4 steps"
    poisson = counts["fmnist_snn_poisson"]
    assert poisson["macs"] == 0 and poisson["layers"][0]["input"] == "spikes", "Poisson: input spikes drive the first layer"
    assert poisson["layers"][0]["synops"] > 0
    for energy in counts.values():
        assert 0 < energy["firing_rate"] < 1 and energy["synops"] > 0
        assert energy["energy_pj"] < 0.5 * 5_603_020.8, "each SNN costs under half the ANN twin's 5.6 uJ"


def test_gaussian_noise_raises_the_firing_of_the_same_weights(shipped_models, fmnist_batch):
    from robustbench_snn.models.encoders import build_encoder

    direct = model_with(shipped_models, kind="snn", encoding="direct")
    noisy = type(direct)(direct.backbone, build_encoder("rsc", seed=0, sigma=0.3, variant="II"), 4, (0.2860,), (0.3530,))
    quiet, loud = measure_energy(direct, fmnist_batch[0]), measure_energy(noisy, fmnist_batch[0], draws=4)
    assert loud["layers"][1]["firing_rate"] > quiet["layers"][1]["firing_rate"]


def test_records_carry_energy_clean_and_under_attack(shipped_models, tmp_path):
    model = shipped_models["fmnist_rsc1_s0.2"]
    record = benchmark(model, attack="pgd", n_examples=24, batch_size=16, store=True, results_dir=tmp_path, save_samples=True)
    energy = record.energy
    assert energy["draws"] == 4 and energy["constants"] == CONSTANTS
    for inputs in ("clean", "adversarial"):
        summary = energy[inputs]
        assert summary["images"] == 24
        assert [entry["layer"] for entry in summary["layers"]][:3] == ["backbone.0", "backbone.2", "backbone.4"]
        assert summary["energy_pj"] == pytest.approx(energy_pj(summary["synops"], summary["macs"]))
    assert energy["adversarial"]["synops"] != energy["clean"]["synops"], "the attack changed the inputs, so the spikes"
    stored = load_rows("fashion-mnist", tmp_path).iloc[-1]["energy"]
    assert stored == json.loads(json.dumps(energy))
    samples = pd.read_csv(tmp_path / "samples" / f"{record.config_hash}.csv")
    assert samples["energy_pj_clean"].mean() == pytest.approx(energy["clean"]["energy_pj"])
    assert samples["synops_adversarial"].mean() == pytest.approx(energy["adversarial"]["synops"])
    reused = benchmark(model, attack="pgd", n_examples=24, batch_size=16, store=True, results_dir=tmp_path)
    assert reused.reused and reused.energy == stored
    table = results_table(load_rows("fashion-mnist", tmp_path), list_cards(), select="all")
    assert table["energy_pj"].iloc[0] == pytest.approx(energy["clean"]["energy_pj"])
    assert table["firing_rate_adv"].iloc[0] == pytest.approx(energy["adversarial"]["firing_rate"])
    shown = CliRunner().invoke(main, ["results", "--all", "--results-dir", str(tmp_path)])
    assert shown.exit_code == 0 and "energy_uJ" in shown.output
    assert f"{energy['clean']['energy_pj'] / 1e6:.3f}" in shown.output
    clean_only = benchmark(model, n_examples=24, batch_size=16)
    assert clean_only.energy["adversarial"] is None and clean_only.energy["clean"]["images"] == 24


def test_energy_command_prints_the_breakdown_and_json():
    runner = CliRunner()
    text = runner.invoke(main, ["energy", "--model", "fmnist_snn_poisson", "-n", "16", "-q"])
    assert text.exit_code == 0, text.output
    assert "backbone.0" in text.output and "total" in text.output and "not a measurement on hardware" in text.output
    attacked = runner.invoke(main, ["energy", "--model", "fmnist_snn_direct", "-n", "16", "--attack", "fgsm", "--json", "-q"])
    assert attacked.exit_code == 0, attacked.output
    data = json.loads(attacked.output)
    assert data["energy"]["adversarial"]["images"] == 16 and data["protocol"] == "fgsm"
    evaluated = runner.invoke(main, ["evaluate", "--model", "fmnist_ann", "-n", "16", "--no-store", "-q"])
    assert "energy           5.6030 uJ on clean inputs" in evaluated.output
    missing = runner.invoke(main, ["energy", "--model", "no_such_model"])
    assert missing.exit_code == 2 and "Traceback" not in missing.output


def test_energy_of_a_users_plain_module_and_spikingjelly_snn():
    images, _ = load_test_set("fashion-mnist", n_examples=8)
    plain = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    assert measure_energy(plain, images)["macs"] == 7840
    torch.manual_seed(0)
    snn = TwoSteps(
        layer.Flatten(step_mode="m"),
        layer.Linear(784, 32, step_mode="m"),
        neuron.LIFNode(step_mode="m"),
        layer.Linear(32, 10, step_mode="m"),
    )
    energy = measure_energy(snn, images)
    assert energy["macs"] == 784 * 32 and energy["layers"][1]["kind"] == "spiking"
    assert energy["synops"] == pytest.approx(energy["spikes"] * 10)


def test_a_spiking_resnet_is_counted_through_its_shortcuts_and_pooled_head():
    from robustbench_snn.data import DATASETS
    from robustbench_snn.models import ModelSpec, build_classifier

    torch.manual_seed(0)
    spec = ModelSpec("resnet19", "snn", encoding="rsc", encoding_params={"sigma": 0.1, "variant": "I"}, timesteps=2)
    model = build_classifier(spec, DATASETS["cifar10"], seed=0)
    energy = measure_energy(model, torch.rand(2, 3, 32, 32))
    synaptic = [layer for layer in energy["layers"] if layer["kind"] == "synaptic"]
    assert len(synaptic) == 1 + 8 * 2 + 2 + 2, "stem, two convolutions per block, two projections, two head layers"
    assert [layer["input"] for layer in synaptic] == ["real values"] + ["spikes"] * (len(synaptic) - 1)
    assert energy["macs"] == 128 * 32 * 32 * 3 * 9, "only the stem multiplies, once for the shared noisy frame"
    assert energy["synops"] > 0


def test_tradeoff_plot_adds_an_energy_panel_when_rows_carry_energy(tmp_path):
    from matplotlib.image import imread
    from test_tables import _row

    from robustbench_snn.store import append_row

    energy = benchmark(load_model("fmnist_snn_direct"), attack="fgsm", n_examples=8).energy
    plain, costed = tmp_path / "plain", tmp_path / "costed"
    for model, robust in (("fmnist_ann", 0.0), ("fmnist_snn_direct", 0.05)):
        append_row(_row(model, 0.1, robust), plain)
        append_row({**_row(model, 0.1, robust), "energy": energy}, costed)
    widths = {}
    for folder in (plain, costed):
        out = tmp_path / f"{folder.name}.png"
        result = CliRunner().invoke(main, ["plot-tradeoff", "--results-dir", str(folder), "--out", str(out)])
        assert result.exit_code == 0, result.output
        widths[folder.name] = imread(out).shape[1]
    assert widths["costed"] > 1.6 * widths["plain"], "a second panel: robust accuracy against energy"
