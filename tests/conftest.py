"""Shared fixtures: the shipped Fashion-MNIST models and a few real test images."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from robustbench_snn.attacks import Protocol, build_protocol
from robustbench_snn.data import DATASETS, EMBEDDED_DIR, load_dataset
from robustbench_snn.models import ModelSpec, build_classifier
from robustbench_snn.registry import list_cards, load_model, write_state_dict


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Keep the user's cache, data root and the repository's results/ out of every test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("RSC_BENCH_RESULTS", str(tmp_path_factory.mktemp("results")))
    for variable in ("RSC_BENCH_DATA", "RSC_BENCH_MODELS", "RSC_BENCH_ATTACKS"):
        monkeypatch.delenv(variable, raising=False)


def require(available: bool, what: str) -> None:
    """Skip a test that needs something pip cannot install, saying what; in CI (CI=true) fail instead,
    so CI can never pass without it."""
    if available:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI needs {what}")
    pytest.skip(f"needs {what} (.ci/run installs it; CI=true makes this a failure)")


@pytest.fixture(scope="session")
def shipped_train_dir(tmp_path_factory) -> Path:
    """A data folder whose Fashion-MNIST training split is the shipped test split, in the real IDX
    files: training tests run on any machine, without Debian's dataset-fashion-mnist."""
    root = tmp_path_factory.mktemp("fmnist-data") / "fashion-mnist"
    root.mkdir()
    shipped = EMBEDDED_DIR / "fashion-mnist"
    for kind in ("images-idx3", "labels-idx1"):
        source = shipped / f"t10k-{kind}-ubyte.gz"
        shutil.copy(source, root / source.name)
        shutil.copy(source, root / f"train-{kind}-ubyte.gz")
    return root.parent


@pytest.fixture(scope="session")
def fmnist_cards():
    cards = list_cards("fashion-mnist")
    assert cards, "no shipped Fashion-MNIST models"
    return cards


@pytest.fixture(scope="session")
def fmnist_batch():
    """The first 16 Fashion-MNIST test images and labels (from the embedded split)."""
    test_set = load_dataset("fashion-mnist", "test", download=False)
    images, labels = test_set.tensors
    return images[:16].clone(), labels[:16].clone()


@pytest.fixture(scope="session")
def shipped_models(fmnist_cards):
    """Each shipped Fashion-MNIST model, loaded once, keyed by name."""
    torch.manual_seed(0)
    return {card.name: load_model(card.name) for card in fmnist_cards}


def model_with(shipped_models, *, kind: str, encoding: str):
    """The first shipped model of a kind and encoding."""
    for model in shipped_models.values():
        if model.card.kind == kind and model.card.encoding.name == encoding:
            return model
    pytest.fail(f"no shipped {kind} model with {encoding} coding")


def reliable_version(version: int) -> Protocol:
    """`reliable` as committed at ``version`` (7: the members version 8 reschedules; 8: the schedule
    version 9 adds to), from tests/data/reliable-v{version}."""
    return build_protocol("reliable", directory=Path(__file__).parent / "data" / f"reliable-v{version}")


def write_cifar10(root: Path, per_batch: int = 4) -> dict:
    """CIFAR-10 in its on-disk python pickle format (batches of random images); returns the test batch."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{index}" for index in range(1, 6)] + ["test_batch"]:
        batch = {
            "data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
            "labels": [int(label) for label in rng.integers(0, 10, size=per_batch)],
        }
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle)
        if name == "test_batch":
            test_batch = batch
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]}, handle)
    return test_batch


@pytest.fixture
def card_data(tmp_path):
    """A valid card for a freshly built ANN whose weights are written beside it."""
    torch.manual_seed(0)
    model = build_classifier(ModelSpec("small_cnn", "ann"), DATASETS["fashion-mnist"])
    sha256, size = write_state_dict(model.state_dict(), tmp_path / "tiny.safetensors")
    return {
        "name": "tiny_ann",
        "dataset": "fashion-mnist",
        "architecture": {"name": "small_cnn", "args": {}},
        "kind": "ann",
        "encoding": {"name": "direct"},
        "timesteps": 1,
        "neuron": None,
        "training": {"recipe": "standard", "command": "rsc-bench train ...", "seed": 0},
        "checkpoint": {"path": "tiny.safetensors", "sha256": sha256, "size_bytes": size},
        "claimed": None,
        "reference": {"paper": "test"},
        "license": "MIT",
    }


def write_card(tmp_path: Path, data: dict, name: str = "tiny_ann.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


class RoundedInput(torch.nn.Module):
    """A deliberately gradient-masked deterministic model: the input is rounded to 5 levels (zero gradient)."""

    stochastic = False

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images):
        return self.model(torch.round(images * 4) / 4)
