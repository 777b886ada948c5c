"""Outside evaluations: a submitted attack tested against an official row's survivors, stored only
when it lowers the number, shown credited on the leaderboard and run by the audit; a malformed or
hostile submission gets a clear error and changes nothing."""

import json
import shutil
import tomllib

import pytest
import torch
from click.testing import CliRunner
from test_plugins import EXAMPLE, _install, rsc_bench

from robustbench_snn.attacks import Attack, build_protocol
from robustbench_snn.attacks.attack import ATTACKS
from robustbench_snn.cli import main
from robustbench_snn.errors import UserError
from robustbench_snn.leaderboard import build_site
from robustbench_snn.outside import run_outside_attack
from robustbench_snn.store import append_row

SURVIVORS = list(range(0, 40, 2))


def _official_row(model: str, survivors: list[int] | None) -> dict:
    """An official `reliable` row of ``model`` on 1,000 images that counts ``survivors`` robust."""
    row = {
        "model": model,
        "dataset": "fashion-mnist",
        "protocol": "reliable",
        "norm": "Linf",
        "eps": 0.1,
        "grad": "bptt",
        "eot": 8,
        "eval_draws": 4,
        "seed": 0,
        "n_examples": 1000,
        "clean_accuracy": 0.9,
        "robust_accuracy": len(survivors or []) / 1000,
        "flags": [],
        "timestamp": "2026-12-01T00:00:00+00:00",
        "preset_unmodified": True,
        "params": {"version": build_protocol("reliable").version},
    }
    return {**row, "survivors": survivors} if survivors is not None else row


@pytest.fixture
def store(tmp_path):
    folder = tmp_path / "results"
    append_row(_official_row("fmnist_ann", SURVIVORS), folder)
    append_row(_official_row("fmnist_ann_pgdat", [0, 1]), folder)
    return folder


def _files(folder) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture
def plugin_site(tmp_path):
    """The example plug-in package (its attack is `example-corner`) laid out as pip installs it."""
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE / "rsc_bench_example", site / "rsc_bench_example")
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    _install(site, "rsc_bench_example", project["version"], project["entry-points"])
    return site


def test_a_plugin_attack_that_breaks_survivors_lowers_the_number_credited_and_joins_the_audit(store, plugin_site, tmp_path):
    done = rsc_bench(
        plugin_site,
        "submit",
        "attack",
        "example-corner",
        "--model",
        "fmnist_ann",
        "--by",
        "A. Researcher",
        "--url",
        "https://example.org/corner",
        "--results-dir",
        str(store),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    evaluation = json.loads(done.stdout)
    assert evaluation["lowered"] and evaluation["survivors"] == len(SURVIVORS) and 0 < len(evaluation["broken"]) <= evaluation["kills"]
    assert set(evaluation["broken"]) <= set(SURVIVORS), "only the samples the row counts robust are attacked"
    assert evaluation["robust_accuracy"] == (len(SURVIVORS) - len(evaluation["broken"])) / 1000
    stored = [json.loads(line) for line in (store / "outside" / "fashion-mnist.jsonl").read_text().splitlines()]
    assert [row["submitted_by"] for row in stored] == ["A. Researcher"] and stored[0]["members"][0]["attack"] == "example-corner"

    build_site(tmp_path / "site_out", store)
    board = {row["model"]: row for row in json.loads((tmp_path / "site_out" / "fashion-mnist.json").read_text())["leaderboard"]}
    cell = board["fmnist_ann"]["robust"]["reliable"]
    assert cell["value"] == evaluation["robust_accuracy"] and cell["by"] == "A. Researcher" and cell["attack"] == "example-corner"
    assert cell["protocol_text"] == "2.00", "the protocol's own number stays beside the lower one"
    assert [badge["name"] for badge in board["fmnist_ann"]["badges"]] == ["outside_stronger"]
    assert "A. Researcher" in board["fmnist_ann"]["badges"][0]["reason"]
    assert board["fmnist_ann_pgdat"]["badges"] == [], "another model is untouched"
    page = (tmp_path / "site_out" / "fashion-mnist.html").read_text()
    assert "example-corner by A. Researcher" in page

    # The attack joins the audit's suite (here a small one: pgd), run where the plug-in is installed.
    code = (
        "from robustbench_snn.audit import plan_audit; from robustbench_snn import load_model; "
        f"plan = plan_audit(load_model('fmnist_ann'), 'fashion-mnist', 'fgsm', 'pgd', 8, 0, 8, None, 'cpu', {str(store)!r}); "
        "print([member.label() for member in plan.suite_members])"
    )
    audited = rsc_bench(plugin_site, code=code)
    assert audited.returncode == 0, audited.stderr
    assert "example-corner" in audited.stdout and "pgd" in audited.stdout


def test_a_reliable_row_that_reaches_the_outside_number_is_no_longer_marked(store, plugin_site, tmp_path):
    done = rsc_bench(
        plugin_site, "submit", "attack", "example-corner", "--model", "fmnist_ann", "--by", "B", "--results-dir", str(store), "--json"
    )
    assert done.returncode == 0, done.stderr
    broken = set(json.loads(done.stdout)["broken"])
    caught = _official_row("fmnist_ann", [sample for sample in SURVIVORS if sample not in broken])
    append_row({**caught, "timestamp": "2026-12-02T00:00:00+00:00"}, store)
    build_site(tmp_path / "out", store)
    board = {row["model"]: row for row in json.loads((tmp_path / "out" / "fashion-mnist.json").read_text())["leaderboard"]}
    assert "by" not in board["fmnist_ann"]["robust"]["reliable"] and board["fmnist_ann"]["badges"] == []


def test_an_attack_that_breaks_nothing_changes_nothing(store, tmp_path):
    attacks = tmp_path / "attacks"
    attacks.mkdir()
    (attacks / "standstill.yaml").write_text("name: standstill\nattack: fgsm\neps: 0.0\n")
    before = _files(store)
    result = CliRunner().invoke(
        main,
        [
            "--attacks-dir",
            str(attacks),
            "submit",
            "attack",
            "standstill",
            "--model",
            "fmnist_ann",
            "--by",
            "C",
            "--results-dir",
            str(store),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "fooled 0 of its 20 survivors" in result.output and "the number stands; nothing stored" in result.output
    assert _files(store) == before


@pytest.mark.parametrize(
    ("preset", "message"),
    [
        ("name: submitted\nattack: fgsm\neps: 0.2\n", "outside the row's threat model"),
        ("name: submitted\nattack: pgd\nnorm: L2\neps: 0.5\n", "outside the row's threat model"),
        ("name: submitted\nmembers: 3\n", "'members' must be a non-empty list"),
        ("name: submitted\nattack: fgsmm\n", "did you mean"),
        ("[unclosed\n", "submitted.yaml"),
        ("name: reliable\nattack: fgsm\n", "a preset's name must be its file's name"),
    ],
)
def test_a_malformed_submission_gets_one_clear_error_and_changes_nothing(store, tmp_path, preset, message):
    attacks = tmp_path / "attacks"
    attacks.mkdir()
    (attacks / "submitted.yaml").write_text(preset)
    before = _files(store)
    result = CliRunner().invoke(
        main,
        ["--attacks-dir", str(attacks), "submit", "attack", "submitted", "--model", "fmnist_ann", "--by", "D", "--results-dir", str(store)],
    )
    assert result.exit_code == 2, result.output
    assert message.lower() in result.output.lower() and "Traceback" not in result.output
    assert _files(store) == before


class _LeavesTheBall(Attack):
    name = "test-leaves-the-ball"
    uses_gradients = False

    def perturb(self, model, spec, images, labels, seed, draws):
        return (1 - images).clamp(0, 1)  # far outside any Linf ball of 0.1


class _Tampers(Attack):
    name = "test-tampers"
    uses_gradients = False

    def perturb(self, model, spec, images, labels, seed, draws):
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.zero_()  # every answer is now class 0: a "kill" on the model it was handed
        return images.clone()


class _Fails(Attack):
    name = "test-fails"
    uses_gradients = False

    def perturb(self, model, spec, images, labels, seed, draws):
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("attack", "message"),
    [(_LeavesTheBall, "beyond the threat model's eps"), (_Fails, "test-fails failed on fmnist_ann: RuntimeError: boom")],
)
def test_a_hostile_plugin_attack_is_refused_and_nothing_is_stored(store, monkeypatch, attack, message):
    ATTACKS.lookup("fgsm")  # the built-ins first, so the test's attack is the only one added
    monkeypatch.setitem(ATTACKS._entries, attack.name, attack())
    before = _files(store)
    with pytest.raises(UserError, match=message):
        run_outside_attack("fmnist_ann", attack.name, "E", results_dir=store)
    assert _files(store) == before


def test_an_attack_that_tampers_with_the_model_it_is_handed_lowers_nothing(store, monkeypatch):
    ATTACKS.lookup("fgsm")
    monkeypatch.setitem(ATTACKS._entries, _Tampers.name, _Tampers())
    before = _files(store)
    evaluation = run_outside_attack("fmnist_ann", _Tampers.name, "F", results_dir=store)
    assert evaluation.kills > 0 and evaluation.broken == [], "its kills do not hold on a fresh copy of the model"
    assert not evaluation.lowered and _files(store) == before


def test_a_row_without_survivors_or_an_anonymous_submission_is_refused(tmp_path):
    folder = tmp_path / "results"
    append_row(_official_row("fmnist_ann", None), folder)
    with pytest.raises(UserError, match="predates stored survivors"):
        run_outside_attack("fmnist_ann", "fgsm", "G", results_dir=folder)
    with pytest.raises(UserError, match="--by"):
        run_outside_attack("fmnist_ann", "fgsm", "  ", results_dir=folder)
    with pytest.raises(UserError, match="no official reliable row"):
        run_outside_attack("fmnist_snn_direct", "fgsm", "G", results_dir=folder)
