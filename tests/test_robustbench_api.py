"""A script written for RobustBench runs with only its imports changed, and our own API returns
adversarial examples a caller can check."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import write_cifar10

from robustbench_snn.errors import UserError

ROBUSTBENCH_SCRIPT = """
import torch
from robustbench_snn.robustbench import benchmark as top_level_benchmark
from robustbench_snn.robustbench.data import load_fashion_mnist
from robustbench_snn.robustbench.eval import benchmark
from robustbench_snn.robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel
from robustbench_snn.robustbench.utils import clean_accuracy, load_model

assert top_level_benchmark is benchmark
x_test, y_test = load_fashion_mnist(n_examples=50)
model = load_model(model_name="fmnist_ann", dataset=BenchmarkDataset.fashion_mnist, threat_model=ThreatModel.Linf)
acc = clean_accuracy(model, x_test, y_test)
print(f"Clean accuracy: {acc:.2%}")
positional = load_model("fmnist_ann", "./models", "fashion-mnist", "Linf")
clean_acc, robust_acc = benchmark(positional, 16, "fashion-mnist", "Linf", False, None, "./data", None, torch.device("cpu"), 8, 0.1,
                                  attack="pgd")
print(clean_acc, robust_acc)
clean_acc, robust_acc = benchmark(model, n_examples=16, dataset=BenchmarkDataset.fashion_mnist, threat_model=ThreatModel.Linf,
                                  eps=8 / 255, device="cpu", batch_size=8, attack="pgd")
print(clean_acc, robust_acc)
"""


def test_a_robustbench_style_script_runs_with_only_the_import_changed(tmp_path):
    result = subprocess.run([sys.executable, "-c", ROBUSTBENCH_SCRIPT], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Clean accuracy: ") and float(lines[0].split()[-1].rstrip("%")) > 80
    strong, weak = (tuple(map(float, line.split())) for line in lines[1:3])
    assert strong[1] <= weak[1] <= weak[0], "eps 0.1 must fool at least as many as eps 8/255"
    assert not list(tmp_path.iterdir()), "RobustBench's model_dir and data_dir defaults must not be written"


def test_robustbench_cifar_loader_reads_the_python_batches_from_data_dir(tmp_path):
    from robustbench_snn.robustbench.data import load_cifar10

    written = write_cifar10(tmp_path)
    x_test, y_test = load_cifar10(n_examples=3, data_dir=str(tmp_path))
    assert x_test.shape == (3, 3, 32, 32) and x_test.dtype == torch.float32 and 0 <= x_test.min() <= x_test.max() <= 1
    assert y_test.tolist() == written["labels"][:3]
    with pytest.raises(UserError, match="transforms_test"):
        load_cifar10(n_examples=3, data_dir=str(tmp_path), transforms_test=lambda image: image)


def test_robustbench_options_this_benchmark_lacks_are_errors(shipped_models):
    from robustbench_snn.robustbench import benchmark, load_model
    from robustbench_snn.robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    with pytest.raises(UserError, match="threat model 'corruptions'"):
        load_model("fmnist_ann", dataset="fashion-mnist", threat_model="corruptions")
    with pytest.raises(UserError, match="not cifar10"):
        load_model("fmnist_ann", dataset="cifar10")
    with pytest.raises(UserError, match="threat model 'corruptions'"):
        load_model("fmnist_ann", dataset=BenchmarkDataset.fashion_mnist, threat_model=ThreatModel.corruptions)
    with pytest.raises(UserError, match="preprocessing"):
        benchmark(shipped_models["fmnist_ann"], 8, "fashion-mnist", preprocessing="Res256Crop224")
    with pytest.raises(UserError, match="corruptions_data_dir"):
        benchmark(shipped_models["fmnist_ann"], 8, "fashion-mnist", "Linf", False, None, "./data", "./corruptions")
    with pytest.raises(UserError, match="several models"):
        benchmark([shipped_models["fmnist_ann"]], 8)


def test_attack_returns_adversarial_examples_inside_the_ball_that_fool_the_model(shipped_models, fmnist_batch):
    from robustbench_snn import attack

    model = shipped_models["fmnist_ann"]
    images, labels = fmnist_batch
    result = attack(model, images, labels, dataset="fashion-mnist", attack="pgd", overrides={"eps": 0.05}, seed=0)
    assert result.adversarial.shape == images.shape
    assert (result.adversarial - images).abs().max() <= 0.05 + 1e-6
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
    with torch.no_grad():
        still_right = model(result.adversarial).argmax(1) == labels
    assert torch.equal(still_right, result.robust), "exactly the samples reported robust survive their adversarial input"
    fooled = result.clean & ~result.robust
    assert fooled.any() and torch.equal(result.adversarial[~fooled], images[~fooled])
