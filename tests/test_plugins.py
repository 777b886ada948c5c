"""Plug-ins: an attack, a coding, an architecture, a dataset, a result column and a defence from an installed package
(examples/plugin) are seen by rsc-bench itself, through the entry-point groups, and a broken plug-in is skipped."""

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plugin"


def _install(site: Path, package: str, version: str, entry_points: dict[str, dict[str, str]]) -> None:
    """Lay a package's metadata out as pip installs it: a dist-info folder with its entry points."""
    info = site / f"{package}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
    groups = [f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in names.items()) for group, names in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(groups))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The example package installed into a folder of its own (put on PYTHONPATH by `rsc_bench`)."""
    site = tmp_path_factory.mktemp("site")
    shutil.copytree(EXAMPLE / "rsc_bench_example", site / "rsc_bench_example")
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    _install(site, "rsc_bench_example", project["version"], project["entry-points"])
    return site


def rsc_bench(site: Path, *arguments: str, code: str | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "robustbench_snn", *arguments]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)


def test_an_installed_packages_attack_is_listed_and_runs_in_evaluate(site):
    listed = rsc_bench(site, "attacks", "list")
    assert listed.returncode == 0 and "example-corner" in listed.stdout, listed.stderr
    run = rsc_bench(site, "evaluate", "--model", "fmnist_ann", "--attack", "example-corner", "-n", "8", "--no-store", "--json", "-q")
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout)
    assert record["attacks"] == ["example-corner"] and 0 <= record["robust_accuracy"] <= record["clean_accuracy"]


def test_an_installed_packages_coding_architecture_and_dataset_build_a_model_that_is_benchmarked(site):
    names = rsc_bench(site, "names", "--json")
    assert names.returncode == 0, names.stderr
    listed = json.loads(names.stdout)
    assert "example-threshold" in listed["encoding"] and "example-noise" in listed["dataset"]
    code = """
import json
from robustbench_snn import benchmark
from robustbench_snn.data import dataset_info
from robustbench_snn.models import ModelSpec, build_classifier
spec = ModelSpec(architecture="example_mlp", kind="snn", encoding="example-threshold", encoding_params={"level": 0.3}, timesteps=2)
model = build_classifier(spec, dataset_info("example-noise")).eval()
record = benchmark(model, dataset="example-noise", attack="fgsm", n_examples=8, model_name="example")
print(json.dumps({"layers": len(model.spiking_layers), "attacks": record.attacks, "eps": record.eps, "components": record.components}))
"""
    run = rsc_bench(site, code=code)
    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout)
    assert shown["layers"] == 1 and shown["attacks"] == ["fgsm[bptt]"] and shown["eps"] == 0.1, "the dataset's own threat model"
    assert shown["components"]["encoder:example-threshold"] == 1, "a plug-in's coding is part of a result's identity"


def test_a_broken_plug_in_is_skipped_with_a_warning_and_the_rest_work(site, tmp_path):
    broken = tmp_path / "broken"
    _install(broken, "broken_plugin", "1.0", {"robustbench_snn.attacks": {"broken": "no_such_module_anywhere"}})
    both = os.pathsep.join([str(site), str(broken)])
    listed = rsc_bench(Path(both), "attacks", "list")
    assert listed.returncode == 0 and "example-corner" in listed.stdout
    assert "broken" in listed.stderr and "no_such_module_anywhere" in listed.stderr


def test_an_installed_packages_result_column_reaches_the_record_the_tables_and_the_leaderboard(site, tmp_path):
    results = str(tmp_path / "results")
    run = rsc_bench(site, "evaluate", "--model", "fmnist_ann", "--attack", "fgsm", "-n", "1000", "--results-dir", results, "--json", "-q")
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout)
    assert 0 < record["columns"]["example_confidence"] <= 1
    assert record["components"]["column:example_confidence"] == 1, "a plug-in's column is part of a result's identity"
    shown = rsc_bench(site, "results", "--results-dir", results, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)[0]["example_confidence"] == pytest.approx(record["columns"]["example_confidence"], abs=1e-9)
    text = rsc_bench(site, "results", "--results-dir", results)
    assert "confidence %" in text.stdout and f"{100 * record['columns']['example_confidence']:.1f}" in text.stdout
    built = rsc_bench(site, "leaderboard", "build", "--results-dir", results, "--out", str(tmp_path / "site"))
    assert built.returncode == 0, built.stderr
    page = (tmp_path / "site" / "fashion-mnist.html").read_text()
    # A registered column is one of the extra columns the table shows behind its "more columns" toggle.
    assert '<th class="more">confidence %</th>' in page
    assert f'<td class="more">{100 * record["columns"]["example_confidence"]:.1f}</td>' in page


def test_an_installed_packages_defence_is_trained_benchmarked_refused_by_nir_and_counted_by_energy(site, tmp_path, shipped_train_dir):
    """A published defence from a plug-in package (examples/plugin: a neuron type, a recipe and a
    preset), with no edit to rsc-bench: its parameters are options of `train`, its card records them,
    it is attacked through its own neurons, NIR refuses it with its reason, and its spikes are counted."""
    shown = rsc_bench(site, "train", "--help")
    assert shown.returncode == 0, shown.stderr
    help_text = " ".join(shown.stdout.split())
    assert "--input-clip FLOAT RANGE example-clipped neurons: the largest input current a neuron takes per step." in help_text
    assert "--example-noise-std FLOAT RANGE example-noisy-inputs: standard deviation of the training noise [default: 0.1]." in help_text
    models = tmp_path / "models"
    out = models / "fashion-mnist" / "clipped"
    trained = rsc_bench(
        site,
        *("train", "--dataset", "fashion-mnist", "--arch", "small_cnn", "--kind", "snn", "-T", "2", "--neuron", "example-clipped"),
        *("--input-clip", "2", "--recipe", "example-noisy-inputs", "--example-noise-std", "0.2", "--epochs", "1"),
        *("--train-examples", "256", "--batch-size", "64", "--data-dir", str(shipped_train_dir), "--out", str(out), "--json", "-q"),
    )
    assert trained.returncode == 0, trained.stderr
    card = json.loads(trained.stdout)
    assert card["neuron"]["input_clip"] == 2.0, "the neuron type's parameter beside the LIF's (which names the type)"
    assert card["training"]["hyperparameters"]["example_noise_std"] == 0.2
    assert "--input-clip 2.0" in card["training"]["command"] and "--example-noise-std 0.2" in card["training"]["command"]

    presets = site / "rsc_bench_example" / "attacks"
    evaluated = rsc_bench(
        site,
        *("--models-dir", str(models), "--attacks-dir", str(presets), "evaluate", "--model", "clipped"),
        *("--attack", "example-clipped-paper", "-n", "16", "--no-store", "--json", "-q"),
    )
    assert evaluated.returncode == 0, evaluated.stderr
    record = json.loads(evaluated.stdout)
    assert record["protocol"] == "example-clipped-paper" and record["robust_accuracy"] <= record["clean_accuracy"]
    assert record["grad"] == "bptt", "attacked as an SNN, through its own neurons"

    nir_file = tmp_path / "clipped.nir"
    exported = rsc_bench(site, "--models-dir", str(models), "models", "export", "clipped", "--nir", str(nir_file))
    assert exported.returncode == 2 and "Traceback" not in exported.stderr and not nir_file.exists()
    assert "ClippedInputLIF has no NIR node: NIR's LIF takes its input current unclipped" in exported.stderr

    counted = rsc_bench(site, "--models-dir", str(models), "energy", "--model", "clipped", "-n", "8", "--json", "-q")
    assert counted.returncode == 0, counted.stderr
    spiking = [layer for layer in json.loads(counted.stdout)["energy"]["clean"]["layers"] if layer["kind"] == "spiking"]
    assert len(spiking) == 3 and all(layer["steps"] == 2 for layer in spiking) and sum(layer["spikes"] for layer in spiking) > 0
