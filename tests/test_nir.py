"""NIR graphs out and in: every zoo architecture round-trips with identical logits, a graph written
by another library (sinabs) runs as NIR says, and an imported graph is benchmarked as an SNN."""

import json

import nir
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import robustbench_snn
from robustbench_snn import benchmark, load_model, load_nir
from robustbench_snn.cli import main
from robustbench_snn.data import dataset_info
from robustbench_snn.errors import UserError
from robustbench_snn.models import build_classifier
from robustbench_snn.models.nir_graphs import GraphBackbone, to_nir
from robustbench_snn.registry import find_card


def _same_logits(model, other, images):
    for each in (model, other):
        if hasattr(each.encoder, "generator"):
            each.encoder.generator.manual_seed(1)
    with torch.no_grad():
        return torch.equal(model(images), other(images))


@pytest.mark.parametrize("name", ["rsc_vgg11", "poisson_resnet19"])
def test_every_zoo_architecture_round_trips_through_a_nir_file_with_identical_logits(name, tmp_path):
    card = find_card(name)
    torch.manual_seed(0)
    model = build_classifier(card.spec(), dataset_info(card.dataset)).eval()
    model.card = card
    for layer in model.modules():  # statistics of a trained network, not the identity of a fresh one
        if isinstance(layer, nn.BatchNorm2d):
            layer.running_mean.uniform_(-0.2, 0.2)
            layer.running_var.uniform_(0.5, 1.5)
    path = robustbench_snn.export_nir(model, tmp_path / f"{name}.nir")
    back = load_nir(path)
    assert (back.encoder.name, back.timesteps) == (model.encoder.name, model.timesteps)
    assert isinstance(back.backbone, GraphBackbone) == name.endswith("resnet19"), "skip connections as a graph, a chain as a chain"
    assert len(back.spiking_layers) == len(model.spiking_layers)
    assert _same_logits(model, back, torch.rand(2, *dataset_info(card.dataset).input_shape))


def test_a_trained_zoo_snn_exported_by_the_cli_is_benchmarked_as_an_snn_under_its_own_name(tmp_path):
    path = tmp_path / "rsc1.nir"
    exported = CliRunner().invoke(main, ["models", "export", "fmnist_rsc1_s0.2", "--nir", str(path), "--json"])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.output)["nir"] == str(path)
    graph = nir.read(path)
    assert sum(isinstance(node, nir.LIF) for node in graph.nodes.values()) == 3
    model, original = load_model(str(path)), load_model("fmnist_rsc1_s0.2")
    images = torch.rand(8, 1, 28, 28)
    assert _same_logits(original, model, images)
    run = dict(dataset="fashion-mnist", attack="pgd", n_examples=16, batch_size=16, overrides={"steps": 2, "grad": "bptr"})
    record, reference = benchmark(model, **run), benchmark(original, **run)
    assert record.model == "nir:rsc1", "a graph's rows are never the registry model's"
    assert record.attacks == ["pgd-2[bptr]"] and record.energy["clean"]["synops"] > 0
    assert (record.clean_accuracy, record.robust_accuracy) == (reference.clean_accuracy, reference.robust_accuracy)
    assert benchmark(graph, **run).robust_accuracy == record.robust_accuracy, "a graph object is accepted as the model"


def _sinabs_graph():
    import sinabs
    import sinabs.layers as sl

    torch.manual_seed(0)
    network = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 32),
        sl.LIFSqueeze(tau_mem=4.0, batch_size=1),
        nn.Linear(32, 10),
        sl.LIFSqueeze(tau_mem=4.0, batch_size=1),
    )
    with torch.no_grad():
        network[1].weight.mul_(20)  # so that the untrained neurons fire
        network[3].weight.mul_(20)
    return sinabs.to_nir(network, torch.zeros(1, 1, 28, 28))


def _as_nir_says(graph, images: np.ndarray, timesteps: int, dt: float) -> np.ndarray:
    """The graph's logits by NIR's definitions: Euler steps of tau dv/dt = (v_leak - v) + r I, a
    spike at v >= threshold resetting to v_reset, the last layer's spikes averaged over time."""
    order = ["0", "1", "2", "3", "4"]
    state = {name: 0.0 for name in order}
    total = 0.0
    for _ in range(timesteps):
        value = images.reshape(len(images), -1)
        for name in order:
            node = graph.nodes[name]
            if isinstance(node, nir.Affine):
                value = value @ np.asarray(node.weight).T + np.asarray(node.bias)
            elif isinstance(node, nir.LIF):
                tau, r, leak = (float(np.asarray(getattr(node, key)).flat[0]) for key in ("tau", "r", "v_leak"))
                potential = state[name] + dt / tau * (leak - state[name] + r * value)
                value = (potential >= float(np.asarray(node.v_threshold).flat[0])).astype(np.float64)
                state[name] = np.where(value > 0, float(np.asarray(node.v_reset).flat[0]), potential)
        total = total + value
    return total / timesteps


def test_a_nir_graph_written_by_another_library_runs_as_nir_defines_it_and_is_attacked_as_an_snn():
    graph = _sinabs_graph()
    with pytest.raises(UserError, match="time steps"):
        load_nir(graph)
    model = load_nir(graph, timesteps=6, dt=1.0)
    images = torch.rand(16, 1, 28, 28)
    with torch.no_grad():
        logits = model(images).double().numpy()
    assert logits.any(), "the neurons fire"
    np.testing.assert_allclose(logits, _as_nir_says(graph, images.double().numpy(), 6, 1.0), atol=1e-6)
    record = benchmark(model, dataset="fashion-mnist", attack="pgd", n_examples=16, overrides={"steps": 2})
    assert record.energy["clean"]["spikes"] > 0 and record.attacks == ["pgd-2[bptt]"]
    assert record.model == "nir:graph"


def test_nir_refuses_what_it_cannot_carry_with_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="ANN has no LIF"):
        to_nir(load_model("fmnist_ann"))
    for defence in ("fmnist_hosnn", "fmnist_tgo"):  # never exported as the plain LIF they are not
        with pytest.raises(UserError, match="has no NIR node"):
            to_nir(load_model(defence))
    (tmp_path / "bad.nir").write_text("not hdf5")
    with pytest.raises(UserError, match="is not a NIR graph"):
        load_nir(tmp_path / "bad.nir")
    with pytest.raises(UserError, match="no NIR file"):
        load_nir(tmp_path / "missing.nir")
    full = {"tau": 2e-3, "r": 1.0, "v_leak": 0.0, "v_threshold": 1.0, "v_reset": 0.0}
    lif = nir.LIF(**{key: np.full(784, value) for key, value in full.items()})
    shapes = {"input": nir.Input({"input": np.array([784])}), "output": nir.Output({"output": np.array([784])})}
    graph = nir.NIRGraph(nodes={**shapes, "lif": lif}, edges=[("input", "lif"), ("lif", "output")])
    with pytest.raises(UserError, match="pass dt"):
        load_nir(graph, timesteps=4)
    assert load_nir(graph, timesteps=4, dt=1e-3).spiking_layers[0].config.tau == pytest.approx(2.0)
    recurrent = nir.NIRGraph(nodes={**shapes, "lif": lif}, edges=[("input", "lif"), ("lif", "lif"), ("lif", "output")], type_check=False)
    with pytest.raises(UserError, match="recurrent"):
        load_nir(recurrent, timesteps=4, dt=1e-3)
    failed = CliRunner().invoke(main, ["models", "export", "fmnist_ann", "--nir", str(tmp_path / "ann.nir")])
    assert failed.exit_code != 0 and "Traceback" not in failed.output and not (tmp_path / "ann.nir").exists()


def test_a_users_model_is_never_stored_under_a_registered_name():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with pytest.raises(UserError, match="registered model's name"):
        benchmark(model, dataset="fashion-mnist", n_examples=8, model_name="fmnist_ann")


def test_a_nir_too_old_to_carry_metadata_is_one_clear_error_naming_the_version_needed(monkeypatch, tmp_path):
    # sinabs 3.x pins nir <= 1.0.4, whose nodes take no metadata: export must say so, not raise a TypeError.
    from robustbench_snn.models import nir_graphs

    monkeypatch.setattr(nir_graphs, "installed_version", lambda name: "1.0.4")
    result = CliRunner().invoke(main, ["models", "export", "fmnist_snn_direct", "--nir", str(tmp_path / "out.nir")])
    assert result.exit_code != 0 and "nir >= 1.0.5" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out.nir").exists()


def test_the_nir_extra_asks_for_a_nir_that_export_can_use():
    import tomllib
    from pathlib import Path

    from packaging.requirements import Requirement

    from robustbench_snn.models.nir_graphs import NIR_NEEDED

    extras = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    needed = ".".join(map(str, NIR_NEEDED))
    for extra in ("nir", "test"):
        (nir_requirement,) = [Requirement(line) for line in extras[extra] if Requirement(line).name == "nir"]
        assert not nir_requirement.specifier.contains("1.0.4") and nir_requirement.specifier.contains(needed), extra
