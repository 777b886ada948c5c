"""`rsc-bench submit check`: a shipped card passes; each kind of broken submission fails with a clear reason."""

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from robustbench_snn.cli import main
from robustbench_snn.data import load_dataset
from robustbench_snn.registry import find_card, write_state_dict
from robustbench_snn.registry.checkpoints import read_state_dict

SHIPPED = find_card("fmnist_ann")


@pytest.fixture
def submission(tmp_path):
    """A shipped card with weights of its own (the shipped ones, one bias nudged), to break in one way per test."""
    state = read_state_dict(Path(SHIPPED.path).with_suffix(".safetensors"))
    last_bias = [name for name in state if name.endswith("bias")][-1]
    state[last_bias] = state[last_bias] + 1e-3
    sha256, size = write_state_dict(state, tmp_path / "fmnist_ann.safetensors")
    card = yaml.safe_load(Path(SHIPPED.path).read_text())
    card["name"] = "submitted_ann"
    card["checkpoint"].update(sha256=sha256, size_bytes=size)

    def write(change=lambda card: None) -> Path:
        data = json.loads(json.dumps(card))
        change(data)
        path = tmp_path / "submitted_ann.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return write


def check(path: Path, *options: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["submit", "check", str(path), "-n", "200", "--attack-examples", "48", "--json", *options])
    return result.exit_code, json.loads(result.output)


def failed(report: dict) -> dict:
    return next(check for check in report["checks"] if not check["passed"])


def test_a_shipped_card_passes():
    code, report = check(Path(SHIPPED.path))
    assert code == 0 and report["passed"]
    assert [check["name"] for check in report["checks"]] == [
        "card",
        "name",
        "checkpoint",
        "weights",
        "loads",
        "clean accuracy",
        "learned",
        "attack sanity and reliability flags",
    ]


def test_a_registered_models_weights_saved_again_under_a_new_name_fail(tmp_path):
    shutil.copy(Path(SHIPPED.path).with_suffix(".safetensors"), tmp_path / "copy.safetensors")
    state = read_state_dict(tmp_path / "copy.safetensors")
    sha256, size = write_state_dict(dict(reversed(state.items())), tmp_path / "resaved.safetensors")  # another file, same tensors
    card = yaml.safe_load(Path(SHIPPED.path).read_text())
    card.update(name="my_new_ann", checkpoint={"path": "resaved.safetensors", "sha256": sha256, "size_bytes": size})
    (tmp_path / "my_new_ann.yaml").write_text(yaml.safe_dump(card))
    code, report = check(tmp_path / "my_new_ann.yaml")
    assert code == 1 and failed(report)["name"] == "weights" and "'fmnist_ann'" in failed(report)["detail"]


def test_a_model_at_chance_is_refused_as_one_that_did_not_learn(tmp_path):
    state = read_state_dict(Path(SHIPPED.path).with_suffix(".safetensors"))
    readout = [name for name in state if name.endswith(("weight", "bias"))][-2:]
    state.update({name: torch.zeros_like(state[name]) for name in readout})  # every logit equal: one class always
    sha256, size = write_state_dict(state, tmp_path / "untrained.safetensors")
    card = yaml.safe_load(Path(SHIPPED.path).read_text())
    card.update(name="untrained", checkpoint={"path": "untrained.safetensors", "sha256": sha256, "size_bytes": size})
    labels = load_dataset("fashion-mnist", "test", download=False).tensors[1][:200]
    card["claimed"]["clean_accuracy"] = float((labels == 0).float().mean())  # what it measures: class 0 always, honestly claimed
    (tmp_path / "untrained.yaml").write_text(yaml.safe_dump(card))
    code, report = check(tmp_path / "untrained.yaml")
    assert code == 1 and failed(report)["name"] == "learned", failed(report)
    assert "chance for 10 classes" in failed(report)["detail"]


def test_a_wrong_hash_fails(submission):
    code, report = check(submission(lambda card: card["checkpoint"].update(sha256="0" * 64)))
    assert code == 1 and failed(report)["name"] == "checkpoint" and "expected 000000" in failed(report)["detail"]


def test_an_html_page_in_place_of_the_checkpoint_fails(submission, tmp_path):
    page = b"<!DOCTYPE html><html><body>Sign in to continue</body></html>"
    (tmp_path / "page.safetensors").write_bytes(page)
    code, report = check(submission(lambda card: card["checkpoint"].update(path="page.safetensors", size_bytes=len(page))))
    assert code == 1 and failed(report)["name"] == "checkpoint" and "HTML page" in failed(report)["detail"]


def test_a_claimed_accuracy_far_from_the_measured_one_fails(submission):
    code, report = check(submission(lambda card: card["claimed"].update(clean_accuracy=0.99)))
    assert code == 1 and failed(report)["name"] == "clean accuracy"
    assert "claimed 99.00%" in failed(report)["detail"]


def test_an_unknown_architecture_fails(submission):
    code, report = check(submission(lambda card: card["architecture"].update(name="resnet999")))
    assert code == 1 and failed(report)["name"] == "card"
    assert "unknown architecture 'resnet999'" in failed(report)["detail"]


def test_a_card_missing_a_field_fails(submission):
    code, report = check(submission(lambda card: card.pop("license")))
    assert code == 1 and failed(report)["name"] == "card" and "field 'license'" in failed(report)["detail"]
    human = CliRunner().invoke(main, ["submit", "check", str(submission(lambda card: card.pop("license")))])
    assert human.exit_code == 1 and "FAIL  card" in human.output and "submission FAILED" in human.output
