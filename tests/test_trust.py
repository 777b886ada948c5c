"""Numbers a researcher can trust off the zoo path: official rows kept apart, results tied to exact
weights and protocol, user-built spikingjelly SNNs and stochastic modules attacked as what they are."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from spikingjelly.activation_based import layer, neuron, surrogate
from torch import nn
from torch.nn import functional as F

from robustbench_snn import benchmark, load_model
from robustbench_snn.cli import main
from robustbench_snn.errors import UserError
from robustbench_snn.evaluation.plan import plan_members, resolve_protocol
from robustbench_snn.models import GradientMode
from robustbench_snn.models.user import wrap_snn
from robustbench_snn.registry import list_cards
from robustbench_snn.store import OFFICIAL_RESULTS_DIR, load_rows
from robustbench_snn.tables import results_table

REPO = Path(__file__).resolve().parents[1]


class SpikingCNN(nn.Module):
    """A user's multi-step spikingjelly network (T = 4) that encodes its input itself."""

    def __init__(self, poisson: bool = False, step_mode: str = "m") -> None:
        super().__init__()
        self.poisson, self.step_mode = poisson, step_mode
        torch.manual_seed(0)
        convolution = layer.Conv2d(1, 8, 3, padding=1, step_mode=step_mode)
        with torch.no_grad():
            convolution.weight.mul_(8)  # so that the untrained neurons fire
        self.net = nn.Sequential(
            convolution,
            neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), step_mode=step_mode),
            layer.Flatten(step_mode=step_mode),
            layer.Linear(8 * 28 * 28, 10, step_mode=step_mode),
        )

    def forward(self, images):
        sequence = images.unsqueeze(0).repeat(4, 1, 1, 1, 1)
        if self.poisson:
            sequence = sequence + ((torch.rand_like(sequence) < sequence).float() - sequence).detach()
        if self.step_mode == "m":
            return self.net(sequence)
        return torch.stack([self.net(frame) for frame in sequence])


def official_cells(directory):
    table = results_table(load_rows("fashion-mnist", directory), list_cards("fashion-mnist"), dataset="fashion-mnist")
    cells = table.drop(columns=["timestamp"])
    return cells.astype(object).where(cells.notna(), None).to_dict("records")  # NaN != NaN: missing as None


def leaderboard_cells(store, out):
    from robustbench_snn.leaderboard import build_site

    build_site(out, store)
    data = json.loads((out / "fashion-mnist.json").read_text())
    return [{key: value for key, value in row.items() if key != "date"} for row in data["leaderboard"]], data["certificates"]


@pytest.mark.slow
def test_quick_runs_never_change_an_official_cell_or_rank(tmp_path):
    store = tmp_path / "official"
    shutil.copytree(OFFICIAL_RESULTS_DIR, store, ignore=shutil.ignore_patterns("*.sh", "*.py"))
    before, before_board = official_cells(store), leaderboard_cells(store, tmp_path / "site-before")
    assert any(cell["protocol"] == "pgd" for cell in before)
    model = load_model("fmnist_rsc1_s0.2")
    run = dict(batch_size=20, store=True, results_dir=store)
    quick = benchmark(model, attack="pgd", n_examples=20, seed=0, **run)
    tuned = benchmark(model, attack="pgd", n_examples=20, seed=1, overrides={"steps": 1}, **run)
    reliable = benchmark(model, attack="reliable", n_examples=20, seed=0, overrides={"queries": 50}, **run)
    certified = CliRunner().invoke(
        main, ["certify", "--model", "fmnist_rsc1_s0.2", "--n0", "20", "--draws", "100", "-n", "4", "--results-dir", str(store), "-q"]
    )
    assert certified.exit_code == 0, certified.output
    assert quick.protocol == "pgd" and tuned.protocol == "pgd-custom" and reliable.protocol == "reliable-custom"
    assert official_cells(store) == before
    assert leaderboard_cells(store, tmp_path / "site-after") == before_board


def test_a_users_run_goes_to_their_folder_and_changes_no_tracked_file(tmp_path):
    environment = {key: value for key, value in os.environ.items() if key != "RSC_BENCH_RESULTS"}
    environment.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"))
    status = ["git", "-C", str(REPO), "status", "--porcelain"]
    before = subprocess.run(status, capture_output=True, text=True).stdout
    run = subprocess.run(
        [sys.executable, "-m", "robustbench_snn", "evaluate", "--model", "fmnist_ann", "--attack", "pgd", "-n", "8", "-q"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert str(tmp_path / "data") in run.stdout
    assert subprocess.run(status, capture_output=True, text=True).stdout == before


def test_two_modules_of_one_class_are_two_results_and_the_same_weights_one(tmp_path):
    def ann(seed):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

    run = dict(dataset="fashion-mnist", n_examples=16, batch_size=16, store=True, results_dir=tmp_path)
    first, second = benchmark(ann(0), **run), benchmark(ann(1), **run)
    assert first.config_hash != second.config_hash and not second.reused
    again = benchmark(ann(0), **run)
    assert again.reused and again.clean_accuracy == first.clean_accuracy


def test_the_spelled_out_preset_is_the_preset(tmp_path):
    model = load_model("fmnist_rsc1_s0.2")
    run = dict(n_examples=16, batch_size=16, store=True, results_dir=tmp_path, seed=0)
    preset = benchmark(model, attack="pgd", **run, overrides={"steps": 2})
    spelled = benchmark(
        model,
        attack="pgd",
        **run,
        overrides={"steps": 2, "eps": 0.1, "grad": "bptt", "surrogate": "atan", "surrogate_alpha": 2.0, "eot": 8, "eval_draws": 4},
    )
    assert spelled.reused and spelled.attacks == preset.attacks == ["pgd-2[bptt]"]


def test_a_user_spikingjelly_network_gets_every_gradient_mode(fmnist_batch):
    images, labels = fmnist_batch
    model = wrap_snn(SpikingCNN(), sample=images)
    assert not model.stochastic and len(model.spiking_layers) == 1
    logits, gradients = {}, {}
    for mode in ("bptt", "bptr", "rga", "act", "hart", "pdsg", "assg"):
        with model.using_gradient(GradientMode(mode)):
            inputs = images.clone().requires_grad_(True)
            output = model(inputs)
            F.cross_entropy(output, labels).backward()
        logits[mode], gradients[mode] = output.detach(), inputs.grad
    assert all(torch.equal(value, logits["bptt"]) for value in logits.values())
    assert all(not torch.allclose(gradients[a], gradients[b]) for a in gradients for b in gradients if a < b)
    with torch.no_grad():
        assert torch.equal(SpikingCNN()(images).mean(0), logits["bptt"])  # the same spikes as the user's own neurons
    overrides = {"steps": 1, "queries": 10, "checks": False}
    record = benchmark(SpikingCNN(), dataset="fashion-mnist", attack="reliable", n_examples=8, batch_size=8, seed=0, overrides=overrides)
    # the protocol's own member list, for the user's network and for the zoo's SNN: the same attacks, white-box ones included
    protocol = resolve_protocol("reliable", overrides, "fashion-mnist")
    members = [
        plan_members(model, protocol, images[:1], "cpu", 0, "fashion-mnist")[0]
        for model in (wrap_snn(SpikingCNN(), stochastic=False), load_model("fmnist_snn_direct"))
    ]
    # a searched member runs as the candidates it keeps, the chosen one first
    searches, expected = iter(record.searches), []
    for member in members[0]:
        search = next(searches) if member.search else None
        expected += [member.label()] if search is None else [search["member"], *[None] * (len(search["kept"]) - 1)]
    assert len(record.attacks) == len(expected) and all(want in (None, got) for got, want in zip(record.attacks, expected))
    assert [member.white_box for member in members[0]] == [member.white_box for member in members[1]]
    assert record.grad == "ensemble"


def test_randomness_is_detected_given_eot_and_seeded(tmp_path):
    run = dict(dataset="fashion-mnist", attack="pgd", n_examples=16, batch_size=16, seed=0, overrides={"steps": 2})
    with_eot = benchmark(SpikingCNN(poisson=True), **run)
    assert with_eot.stochastic and with_eot.eot == 8 and "stochastic_without_eot" not in with_eot.flags
    single = benchmark(SpikingCNN(poisson=True), **{**run, "overrides": {"steps": 2, "eot": 1}})
    assert "stochastic_without_eot" in single.flags
    state = torch.get_rng_state()
    repeats = [benchmark(SpikingCNN(poisson=True), **run) for _ in range(2)]
    assert repeats[0].clean_accuracy == repeats[1].clean_accuracy == with_eot.clean_accuracy
    assert repeats[0].robust_accuracy == repeats[1].robust_accuracy
    assert torch.equal(torch.get_rng_state(), state)  # the caller's generator is left alone


def test_a_protocol_with_members_that_cannot_run_is_reduced_and_flagged():
    record = benchmark(
        SpikingCNN(step_mode="s"),
        dataset="fashion-mnist",
        attack="reliable",
        n_examples=8,
        batch_size=8,
        seed=0,
        overrides={"steps": 1, "queries": 10, "checks": False},
    )
    assert record.protocol.endswith("-reduced") and "reduced_protocol" in record.flags
    assert any("bptr" in reason for reason in record.skipped_members)
    assert not record.preset_unmodified or record.protocol != "reliable"


def test_a_users_snn_runs_the_whole_protocol_with_the_reference_ann_or_its_own_twin():
    settings = {"steps": 1, "queries": 10, "checks": False}
    record = benchmark(SpikingCNN(), dataset="fashion-mnist", attack="reliable", n_examples=8, batch_size=8, seed=0, overrides=settings)
    assert not record.protocol.endswith("-reduced") and "reduced_protocol" not in record.flags, record.skipped_members
    assert "transfer<-fmnist_ann" in record.attacks, "an unregistered model's transfer comes from the dataset's reference ANN"
    torch.manual_seed(1)
    own_twin = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    mine = benchmark(
        SpikingCNN(), dataset="fashion-mnist", attack="reliable", n_examples=8, batch_size=8, seed=0, overrides=settings, twin=own_twin
    )
    assert "transfer<-Sequential" in mine.attacks and "transfer<-fmnist_ann" not in mine.attacks
    assert mine.config_hash != record.config_hash, "another twin is another evaluation"
    with pytest.raises(UserError, match="twin must be"):
        benchmark(SpikingCNN(), dataset="fashion-mnist", attack="pgd", n_examples=8, twin=3)


@pytest.mark.parametrize("attack", ["pgd", "none"])
def test_records_carry_the_one_draw_and_the_all_draws_accuracy(attack):
    model = load_model("fmnist_rsc1_s0.2")
    record = benchmark(
        model,
        attack=attack,
        n_examples=64,
        batch_size=64,
        seed=0,
        overrides={"steps": 1, "eval_draws": 4} if attack == "pgd" else {"eval_draws": 4},
    )
    assert record.clean_accuracy <= record.clean_accuracy_one_draw
