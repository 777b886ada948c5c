"""The rsc-bench command line as a user runs it."""

import json
import subprocess
import sys
import time

import pytest
import torch
import yaml
from click.testing import CliRunner
from conftest import write_cifar10

from robustbench_snn.cli import main
from robustbench_snn.data import DATASETS
from robustbench_snn.models import ModelSpec, build_classifier
from robustbench_snn.registry import find_card, write_state_dict
from robustbench_snn.shipped import shipped_folder


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args))

    return invoke


def test_evaluate_prints_clean_accuracy(run, fmnist_cards):
    result = run("evaluate", "--model", fmnist_cards[0].name, "-n", "64", "-q")
    assert result.exit_code == 0, result.output
    assert "clean accuracy" in result.output
    assert "(test split, n=64)" in result.output


def test_evaluate_json_is_one_machine_readable_record(run, shipped_models):
    name = next(name for name, model in shipped_models.items() if model.stochastic)
    result = run("evaluate", "--model", name, "-n", "100", "--seed", "3", "--json", "-q")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["model"] == name and record["n_examples"] == 100 and record["protocol"] == "none"
    assert 0 <= record["clean_accuracy"] <= 1 and record["robust_accuracy"] is None
    assert record["stochastic"] is True and record["seed"] == 3
    assert record["checkpoint_sha256"] == shipped_models[name].card.checkpoint.sha256
    assert {"torch", "spikingjelly", "robustbench-snn"} <= set(record["versions"])


def test_same_seed_gives_the_same_record_for_a_stochastic_model(run, shipped_models):
    name = next(name for name, model in shipped_models.items() if model.stochastic)
    outputs = [json.loads(run("evaluate", "--model", name, "-n", "200", "--json", "-q").output) for _ in range(2)]
    assert outputs[0]["clean_accuracy"] == outputs[1]["clean_accuracy"]


def test_models_list_and_show(run, fmnist_cards):
    listing = run("models", "list", "--dataset", "fashion-mnist")
    assert listing.exit_code == 0
    for card in fmnist_cards:
        assert card.name in listing.output
    assert "rsc_resnet19" not in listing.output
    cards = json.loads(run("models", "list", "--json").output)
    assert {"rsc_resnet19", fmnist_cards[0].name} <= {card["name"] for card in cards}
    shown = run("models", "show", "rsc_resnet19")
    assert shown.exit_code == 0 and "architecture:" in shown.output and "resnet19" in shown.output
    assert json.loads(run("models", "show", "rsc_resnet19", "--json").output)["checkpoint"] is None


def test_card_without_checkpoint_is_a_clear_message_not_a_crash(run):
    result = run("evaluate", "--model", "rsc_resnet19")
    assert result.exit_code == 2
    assert "no checkpoint yet" in result.output and "Traceback" not in result.output


def _rsc_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robustbench_snn", *args], capture_output=True, text=True)


def test_missing_checkpoint_exits_2_with_one_message_and_no_traceback(tmp_path):
    result = _rsc_bench("evaluate", "--model", "rsc_resnet19", "--checkpoint", str(tmp_path / "missing.safetensors"))
    assert result.returncode == 2
    assert result.stderr.startswith("Error: checkpoint") and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_dataset_exits_2_saying_which_where_and_how(tmp_path):
    torch.manual_seed(0)
    model = build_classifier(ModelSpec("small_cnn", "ann"), DATASETS["cifar10"])
    sha256, size = write_state_dict(model.state_dict(), tmp_path / "cifar_cnn.safetensors")
    card = {
        "name": "cifar_cnn",
        "dataset": "cifar10",
        "architecture": {"name": "small_cnn"},
        "kind": "ann",
        "encoding": {"name": "direct"},
        "timesteps": 1,
        "neuron": None,
        "training": {"recipe": "standard", "command": "rsc-bench train ..."},
        "checkpoint": {"path": "cifar_cnn.safetensors", "sha256": sha256, "size_bytes": size},
        "claimed": None,
        "reference": {"paper": "test"},
        "license": "MIT",
    }
    (tmp_path / "cifar_cnn.yaml").write_text(yaml.safe_dump(card))
    empty_root = tmp_path / "no-data"
    result = _rsc_bench("evaluate", "--model", str(tmp_path / "cifar_cnn.yaml"), "--data-dir", str(empty_root))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "dataset 'cifar10' (test split) was not found" in result.stderr
    assert str(empty_root) in result.stderr and "To get it:" in result.stderr


HELP_OF_EVERY_COMMAND = """
import json, sys, time
import click
from click.testing import CliRunner
from robustbench_snn.cli import main

def paths(command, prefix):
    yield prefix
    for name, sub in getattr(command, "commands", {}).items():
        yield from paths(sub, [*prefix, name])

runner, seconds, failed = CliRunner(), {}, []
for path in paths(main, []):
    started = time.perf_counter()
    result = runner.invoke(main, [*path, "--help"])
    seconds[" ".join(path) or "rsc-bench"] = time.perf_counter() - started
    if result.exit_code != 0 or "Usage:" not in result.output:
        failed.append(path)
print(json.dumps({"seconds": seconds, "failed": failed, "torch": "torch" in sys.modules}))
"""


def test_help_of_every_command_explains_it_quickly_without_importing_torch():
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", HELP_OF_EVERY_COMMAND], capture_output=True, text=True, timeout=120)
    whole_process = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert not report["failed"]
    assert not report["torch"], "a --help must not import torch (it costs seconds)"
    assert len(report["seconds"]) >= 20, "every command and group of the click tree"
    assert max(report["seconds"].values()) < 1.0, "every command's help renders in under a second"
    assert whole_process / len(report["seconds"]) < 1.0, "help in under a second per command, start-up included"


def test_names_lists_what_each_choice_option_accepts(run):
    result = run("names", "--json")
    assert result.exit_code == 0
    names = json.loads(result.output)
    assert "bptt" in names["grad"] and "fashion-mnist" in names["dataset"] and "relaxed" in names["estimator"]
    assert "--grad GRAD" in run("evaluate", "--help").output
    wrong = run("names", "gradient")
    assert wrong.exit_code == 2 and "choose one of" in wrong.output


def test_evaluate_under_an_attack_accepts_fractional_eps_and_stores_the_row(run, tmp_path):
    arguments = [
        "evaluate",
        "--model",
        "fmnist_ann",
        "--attack",
        "pgd",
        "--eps",
        "8/255",
        "--steps",
        "3",
        "-n",
        "32",
        "--seed",
        "0",
        "--results-dir",
        str(tmp_path),
        "--json",
        "-q",
    ]
    record = json.loads(run(*arguments).output)
    assert record["eps"] == pytest.approx(8 / 255) and record["norm"] == "Linf"
    assert record["attacks"] == ["pgd-3"] and record["protocol"] == "pgd-custom"  # 3 steps: not the preset
    assert record["robust_accuracy"] <= record["clean_accuracy"]
    assert record["flags"] == [] and record["n_examples"] == 32 and record["runtime_s"] >= 0
    assert (tmp_path / "fashion-mnist.jsonl").is_file()
    assert json.loads(run(*arguments).output)["reused"] is True
    human = run(*arguments[:-2], "-q")
    assert "robust accuracy" in human.output and "stored result reused" in human.output


def test_flags_are_printed_with_their_meaning(run):
    result = run("evaluate", "--model", "fmnist_rsc1_s0.2", "--attack", "pgd", "--eot", "1", "--steps", "2", "-n", "16", "--no-store", "-q")
    assert result.exit_code == 0, result.output
    assert "stochastic_without_eot: a stochastic model was attacked with single-draw gradients" in result.output


def test_attacks_list_shows_every_shipped_preset(run):
    result = run("attacks", "list")
    assert result.exit_code == 0
    for preset in ("fgsm", "pgd", "apgd", "autoattack", "autoattack-rand", "square", "transfer", "reliable"):
        assert f"\n{preset} " in "\n" + result.output
    presets = json.loads(run("attacks", "list", "--json").output)
    assert len(presets["reliable"]["members"]) >= 10


def test_bad_attack_options_are_clear_errors(run):
    result = run("evaluate", "--model", "fmnist_ann", "--attack", "pgdd")
    assert result.exit_code == 2 and "unknown attack 'pgdd'" in result.output
    result = run("evaluate", "--model", "fmnist_ann", "--attack", "pgd", "--eps", "1/0")
    assert result.exit_code == 2 and "8/255" in result.output
    result = run("evaluate", "--model", "fmnist_ann", "--eps", "0.1")
    assert result.exit_code == 2 and "need an attack" in result.output


def test_a_cifar_recipe_card_evaluates_a_users_checkpoint_under_pgd(tmp_path):
    write_cifar10(tmp_path / "data", per_batch=4)
    torch.manual_seed(0)
    card = find_card("rsc_resnet19")
    model = build_classifier(card.spec(), DATASETS["cifar10"])
    write_state_dict(model.state_dict(), tmp_path / "my_resnet19.safetensors")
    result = _rsc_bench(
        "evaluate",
        "--model",
        "rsc_resnet19",
        "--checkpoint",
        str(tmp_path / "my_resnet19.safetensors"),
        "--attack",
        "pgd",
        "--steps",
        "2",
        "--eot",
        "2",
        "--eval-draws",
        "1",
        "-n",
        "4",
        "--data-dir",
        str(tmp_path / "data"),
        "--no-store",
        "--json",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["model"] == "rsc_resnet19" and record["dataset"] == "cifar10" and record["n_examples"] == 4
    assert record["eps"] == pytest.approx(8 / 255) and record["robust_accuracy"] <= record["clean_accuracy"]


def test_results_shows_a_users_own_run_beside_the_official_rows_with_and_without_results_dir(run, tmp_path, monkeypatch):
    monkeypatch.delenv("RSC_BENCH_RESULTS")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert run("evaluate", "--model", "fmnist_ann", "--attack", "pgd", "-n", "16", "-q").exit_code == 0
    mine = tmp_path / "data" / "rsc-bench" / "results"
    shown = json.loads(run("results", "--protocol", "pgd", "--eps", "0.1", "--json").output)
    stores = [(row["store"], row["model"], row["n_examples"]) for row in shown]
    assert stores[0] == ("yours", "fmnist_ann", 16), "the user's run first, marked"
    assert ("official", "fmnist_ann", 1000) in stores, "beside, never replacing, the official row"
    only_mine = json.loads(run("results", "--results-dir", str(mine), "--json").output)
    assert [(row["store"], row["model"]) for row in only_mine] == [("yours", "fmnist_ann")]
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = run("results", "--results-dir", str(empty))
    assert nothing.exit_code == 3 and str(empty) in nothing.output


def test_every_attack_field_is_an_evaluate_option_bounded_as_the_schema_bounds_it(run):
    from robustbench_snn.attacks import AttackSpec, Protocol
    from robustbench_snn.attacks.protocol import PRESET_ONLY_FIELDS
    from robustbench_snn.cli.evaluate import evaluate

    options = {param.name for param in evaluate.params}
    assert set(AttackSpec.model_fields) - {"attack", *PRESET_ONLY_FIELDS} <= options, "a new attack field is an option without more code"
    assert not set(PRESET_ONLY_FIELDS) & options
    assert {"eval_draws", "checks"} <= options and {"eval_draws", "checks"} <= set(Protocol.model_fields)
    for option, value in (("--steps", "10001"), ("--restarts", "101"), ("--temperature", "0"), ("--eot", "1025")):
        result = run("evaluate", "--model", "fmnist_ann", option, value)
        assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output, option
    with pytest.raises(ValueError):
        AttackSpec(attack="pgd", steps=10001)


def test_names_of_a_kind_whose_entries_describe_themselves_shows_what_each_does(run):
    recipes = run("names", "recipe")
    assert recipes.exit_code == 0
    lines = dict(line.split(maxsplit=1) for line in recipes.output.splitlines())
    assert set(lines) == set(json.loads(run("names", "recipe", "--json").output)["recipe"])
    assert "Parseval" in lines["snn-rat"] and "Sharmin" in lines["low-latency"]
    assert "names recipe" in run("train", "--help").output


def test_the_plot_commands_as_the_design_brief_writes_them_name_their_own_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for command, expected in (("plot-tradeoff", "tradeoff-fashion-mnist-pgd.png"), ("plot-eps", "eps-fashion-mnist-pgd.png")):
        monkeypatch.setenv("RSC_BENCH_RESULTS", str(shipped_folder("results")))  # the official rows only
        result = CliRunner().invoke(main, [command])
        assert result.exit_code == 0, result.output
        assert expected in result.output and (tmp_path / expected).stat().st_size > 0


def test_an_eps_outside_the_data_range_is_refused_before_any_work(run):
    result = run("evaluate", "--model", "fmnist_ann", "--attack", "pgd", "--eps", "2", "-n", "4")
    assert result.exit_code == 2 and "outside fashion-mnist's data range" in result.output and "Traceback" not in result.output
    assert run("evaluate", "--model", "fmnist_ann", "--attack", "pgd", "--norm", "L2", "--eps", "29", "-n", "4").exit_code == 2


def test_an_unknown_model_suggests_the_closest_names(run):
    result = run("evaluate", "--model", "fmnist_snn_poison", "-n", "4")
    assert result.exit_code == 2 and "did you mean fmnist_snn_poisson" in result.output


def test_attacks_show_prints_a_preset_in_full(run):
    result = run("attacks", "show", "reliable")
    assert result.exit_code == 0 and "version" in result.output and "sequential" in result.output and "searched" in result.output
    assert json.loads(run("attacks", "show", "pgd", "--json").output)["name"] == "pgd"
    missing = run("attacks", "show", "relaible")
    assert missing.exit_code == 2 and "did you mean reliable" in missing.output


def test_results_filters_by_model(run):
    official = str(shipped_folder("results"))
    result = run("results", "--model", "fmnist_snn_rat", "--results-dir", official, "--json")
    assert result.exit_code == 0 and {row["model"] for row in json.loads(result.output)} == {"fmnist_snn_rat"}
    assert run("results", "--model", "no_such_model", "--results-dir", official).exit_code == 3


def test_robustbench_spells_the_dataset_by_its_enum_name_too():
    from robustbench_snn.robustbench import load_model

    assert load_model("fmnist_ann", dataset="fashion_mnist").card.dataset == "fashion-mnist"


def test_figures_draw_quick_runs_only_when_asked(run, tmp_path):
    folder = tmp_path / "mine"
    assert run("evaluate", "--model", "fmnist_ann", "--attack", "pgd", "-n", "8", "--results-dir", str(folder)).exit_code == 0
    for command in ("plot-tradeoff", "plot-eps"):
        default = run(command, "--results-dir", str(folder), "--out", str(tmp_path / f"{command}.png"))
        assert default.exit_code == 3, default.output  # a quick run is no official cell, and no figure's either
        asked = run(command, "--results-dir", str(folder), "--out", str(tmp_path / f"{command}.png"), "--quick-runs")
        assert asked.exit_code == 0 and "(1 models)" in asked.output


def test_a_missing_value_reads_the_same_in_every_column_of_the_results_table(run):
    result = run("results", "--results-dir", str(shipped_folder("results")), "--protocol", "pgd")
    assert result.exit_code == 0 and "NaN" not in result.output and " - " in result.output
