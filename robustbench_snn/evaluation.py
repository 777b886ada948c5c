"""Evaluation: run a model over the first n test examples and return one benchmark record.

Stochastic models (Poisson, RSC) are evaluated with one encoder draw per example from a
generator seeded with ``seed``, so a record is reproducible.
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from robustbench_snn.data import first_examples, load_dataset
from robustbench_snn.errors import UserError
from robustbench_snn.models import Classifier

logger = logging.getLogger(__name__)

PROTOCOLS = ("none",)


@dataclass
class EvaluationRecord:
    """One benchmark result: a model on a dataset under a protocol."""

    model: str
    dataset: str
    protocol: str
    n_examples: int
    clean_accuracy: float
    robust_accuracy: float | None
    seed: int
    eval_draws: int
    stochastic: bool
    checkpoint_sha256: str | None
    runtime_s: float
    flags: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    timestamp: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def versions() -> dict[str, str]:
    """Versions that a result depends on."""
    found = {"python": platform.python_version()}
    for package in ("robustbench-snn", "torch", "spikingjelly"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "unknown"
    return found


@torch.inference_mode()
def predict(
    model: Classifier,
    loader: DataLoader,
    device: str = "cpu",
    progress: bool = False,
    description: str = "clean",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true labels for every example the loader yields."""
    predictions, labels = [], []
    with tqdm(total=len(loader.dataset), desc=description, unit="img", disable=not progress, leave=False) as bar:
        for images, targets in loader:
            predictions.append(model(images.to(device)).argmax(dim=1).cpu())
            labels.append(targets)
            bar.update(len(targets))
    return torch.cat(predictions), torch.cat(labels)


def benchmark(
    model: Classifier,
    *,
    dataset: str = "fashion-mnist",
    attack: str = "none",
    n_examples: int | None = 1000,
    seed: int = 0,
    batch_size: int = 256,
    data_dir: str | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> EvaluationRecord:
    """Evaluate ``model`` (from `load_model`) on the first ``n_examples`` test images."""
    if attack not in PROTOCOLS:
        raise UserError(f"unknown attack protocol {attack!r}; available: {', '.join(PROTOCOLS)}")
    card = getattr(model, "card", None)
    if card is not None and card.dataset != dataset:
        raise UserError(f"model {card.name!r} was trained on {card.dataset}, not {dataset}")
    if batch_size <= 0:
        raise UserError(f"batch size must be positive, got {batch_size}")
    examples = first_examples(load_dataset(dataset, "test", data_dir), n_examples)
    loader = DataLoader(examples, batch_size=batch_size, shuffle=False)
    if model.stochastic:
        model.encoder.seed(seed)
    model = model.to(device).eval()
    started = time.perf_counter()
    predictions, labels = predict(model, loader, device, progress)
    runtime = time.perf_counter() - started
    record = EvaluationRecord(
        model=card.name if card is not None else type(model).__name__,
        dataset=dataset,
        protocol=attack,
        n_examples=len(labels),
        clean_accuracy=(predictions == labels).float().mean().item(),
        robust_accuracy=None,
        seed=seed,
        eval_draws=1,
        stochastic=model.stochastic,
        checkpoint_sha256=getattr(model, "checkpoint_sha256", None),
        runtime_s=round(runtime, 3),
        versions=versions(),
        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    logger.info("%s on %s: clean accuracy %.4f (n=%d)", record.model, dataset, record.clean_accuracy, record.n_examples)
    return record
