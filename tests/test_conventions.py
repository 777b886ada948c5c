"""One convention for every command: user mistakes give one Error line and exit 2, no stored
results exit 3 everywhere, every command that prints results has --json."""

from __future__ import annotations

import json
import shutil

import click
import pytest
from click.testing import CliRunner

from robustbench_snn.cli import main


def _leaves(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _leaves(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def test_every_command_has_json_output():
    missing = [" ".join(path) for path, command in _leaves(main) if not any(param.name == "as_json" for param in command.params)]
    assert not missing, f"commands without --json: {missing}"


def _fails_cleanly(arguments: list[str], code: int, tmp_path) -> str:
    result = CliRunner().invoke(main, arguments, catch_exceptions=False)
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    return lines[0]


DEVICE_COMMANDS = [
    ["evaluate", "--model", "fmnist_ann"],
    ["audit", "fmnist_ann", "--no-store"],
    ["certify", "--model", "fmnist_rsc1_s0.2", "--no-store"],
    ["train", "--dataset", "fashion-mnist", "--arch", "small_cnn", "--kind", "ann", "--out", "never/written"],
]


@pytest.mark.parametrize("command", DEVICE_COMMANDS, ids=lambda command: command[0])
@pytest.mark.parametrize("device", ["cuda:7", "foo"])
def test_a_device_this_machine_lacks_is_one_line_exit_2(command, device, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = _fails_cleanly([*command, "--device", device], 2, tmp_path)
    assert "device" in message
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "command",
    [
        ["results"],
        ["results", "--json"],
        ["results", "--all"],
        ["plot-tradeoff", "--out", "figure.png"],
        ["plot-eps", "--out", "figure.png"],
    ],
)
def test_no_stored_results_exit_3_on_every_reader(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    message = _fails_cleanly([*command, "--results-dir", str(tmp_path / "empty")], 3, tmp_path)
    assert "no stored" in message
    assert not (tmp_path / "figure.png").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["models", "show", "no_such_model"],
        ["evaluate", "--model", "no_such_model"],
        ["submit", "check", "missing.yaml"],
        ["submit", "evaluate", "missing.yaml"],
        ["certify", "--model", "no_such_model"],
        ["audit", "no_such_model", "--no-store"],
    ],
)
def test_a_missing_model_is_one_line_exit_2_on_every_command(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _fails_cleanly(command, 2, tmp_path)


def test_a_users_models_and_attacks_folders_join_the_shipped_ones(tmp_path, monkeypatch):
    from robustbench_snn.registry import find_card

    models, presets = tmp_path / "my_models", tmp_path / "my_attacks"
    models.mkdir(), presets.mkdir()
    card = find_card("fmnist_ann")
    data = card.model_dump(mode="json")
    data.update(name="my_ann")
    shutil.copy(card.path.parent / card.checkpoint.path, models / "my_ann.safetensors")
    data["checkpoint"]["path"] = "my_ann.safetensors"
    (models / "my_ann.yaml").write_text(json.dumps(data))
    (presets / "quick.yaml").write_text("name: quick\nattack: fgsm\ndescription: one step\n")
    listed = CliRunner().invoke(main, ["--models-dir", str(models), "models", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    names = {entry["name"] for entry in json.loads(listed.output)}
    assert {"my_ann", "fmnist_ann"} <= names
    monkeypatch.setenv("RSC_BENCH_ATTACKS", str(presets))
    presets_listed = json.loads(CliRunner().invoke(main, ["attacks", "list", "--json"]).output)
    assert presets_listed["quick"]["shipped"] is False and presets_listed["pgd"]["shipped"] is True
    evaluated = CliRunner().invoke(
        main, ["--models-dir", str(models), "evaluate", "--model", "my_ann", "--attack", "quick", "-n", "16", "--no-store", "--json", "-q"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    record = json.loads(evaluated.output)
    assert record["model"] == "my_ann" and [attack.split("[")[0] for attack in record["attacks"]] == ["fgsm"]
    assert record["protocol"] == "quick" and not record["preset_unmodified"]


def test_one_broken_preset_of_yours_does_not_hide_the_others(tmp_path):
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "broken.yaml").write_text("name: broken\nmembers: 3\n")
    (presets / "quick.yaml").write_text("name: quick\nattack: fgsm\ndescription: one step\n")
    result = CliRunner().invoke(main, ["--attacks-dir", str(presets), "attacks", "list"])
    assert result.exit_code == 0, result.output
    assert "quick            one step" in result.output and "pgd" in result.output
    assert "warning: preset broken cannot be used" in result.output and "'members' must be a non-empty list" in result.output


def test_an_eps_beyond_the_threat_model_is_run_and_said_so(caplog):
    from robustbench_snn import benchmark, load_model

    with caplog.at_level("WARNING", logger="robustbench_snn"):
        record = benchmark(load_model("fmnist_ann"), attack="fgsm", overrides={"eps": 0.5}, n_examples=4)
    assert record.eps == 0.5
    assert "5.0x fashion-mnist's threat model (eps 0.1)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="robustbench_snn"):
        benchmark(load_model("fmnist_ann"), attack="fgsm", n_examples=4)
    assert "threat model" not in caplog.text
