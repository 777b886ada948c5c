"""RobustBench's API over this benchmark: code written for RobustBench runs with only its imports changed.

    from robustbench_snn.robustbench import benchmark, clean_accuracy, load_cifar10, load_model

`load_model` and `benchmark` take RobustBench's arguments, in its order (positionally too), and
`benchmark` returns RobustBench's ``(clean_accuracy, robust_accuracy)`` tuple. Where RobustBench
runs AutoAttack, this runs our ``reliable`` protocol (AutoAttack's APGD-DLR among a dozen
members built for SNNs and stochastic codings); pass ``attack=`` for another preset. Our own API
(`robustbench_snn.benchmark`) stays the richer one: it returns the full record with flags.

Differences, each an error rather than a silent change: ``preprocessing`` and
``aa_state_path`` are not supported; the threat models are Linf and L2 (no corruptions).
``model_dir`` and ``custom_checkpoint`` follow RobustBench's meaning: registered weights ship with
the package, and a custom checkpoint replaces them.
"""

from __future__ import annotations

import logging
import os
from enum import Enum

import torch
from torch import nn

from robustbench_snn.data import load_test_set
from robustbench_snn.errors import UserError
from robustbench_snn.evaluation import benchmark as evaluate
from robustbench_snn.evaluation.inputs import InputError
from robustbench_snn.registry import load_model as load_registered

logger = logging.getLogger(__name__)

THREAT_MODELS = ("Linf", "L2")


def _name(value: str | Enum) -> str:
    return value.value if isinstance(value, Enum) else str(value)


def _threat_model(threat_model: str | Enum) -> str:
    name = _name(threat_model)
    if name not in THREAT_MODELS:
        raise UserError(f"threat model {name!r} is not supported here; choose one of {', '.join(THREAT_MODELS)}")
    return name


def load_model(
    model_name: str,
    model_dir: str | os.PathLike = "./models",
    dataset: str | Enum = "fashion-mnist",
    threat_model: str | Enum = "Linf",
    custom_checkpoint: str = "",
    norm: str | None = None,
) -> nn.Module:
    """A registered model by name, as RobustBench's ``load_model``: images in [0, 1] -> logits.

    ``dataset`` must be the model's own; ``model_dir`` is accepted for RobustBench scripts and
    never written to (our checkpoints ship with the package or sit in a private cache).
    """
    _threat_model(norm or threat_model)
    model = load_registered(model_name, checkpoint=custom_checkpoint or None)
    if model.card.dataset != _name(dataset):
        raise UserError(f"model {model_name!r} is a {model.card.dataset} model, not {_name(dataset)}")
    return model


def benchmark(
    model: nn.Module,
    n_examples: int = 10000,
    dataset: str | Enum = "fashion-mnist",
    threat_model: str | Enum = "Linf",
    to_disk: bool = False,
    model_name: str | None = None,
    data_dir: str | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 32,
    eps: float | None = None,
    log_path: str | None = None,
    preprocessing: object = None,
    aa_state_path: str | None = None,
    *,
    attack: str = "reliable",
    seed: int = 0,
) -> tuple[float, float]:
    """Clean and robust accuracy of ``model`` on the first ``n_examples`` test images, as RobustBench's
    ``benchmark`` returns them. ``to_disk`` stores the full record in your results folder;
    ``log_path`` receives this run's log lines."""
    if preprocessing is not None or aa_state_path is not None:
        raise UserError("preprocessing and aa_state_path are RobustBench options this benchmark does not support")
    handler = logging.FileHandler(log_path) if log_path else None
    if handler is not None:
        logging.getLogger("robustbench_snn").addHandler(handler)
    try:
        record = evaluate(
            model,
            dataset=_name(dataset),
            attack=attack,
            n_examples=n_examples,
            seed=seed,
            batch_size=batch_size,
            data_dir=data_dir,
            device=str(device or "cpu"),
            overrides={"eps": eps, "norm": _threat_model(threat_model)},
            store=to_disk,
            model_name=model_name,
        )
    finally:
        if handler is not None:
            logging.getLogger("robustbench_snn").removeHandler(handler)
            handler.close()
    return record.clean_accuracy, record.robust_accuracy


@torch.inference_mode()
def clean_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 100, device: str | torch.device | None = None
) -> float:
    """The share of ``x`` that ``model`` classifies as ``y`` (one forward per image), as RobustBench's."""
    device = torch.device(device or "cpu")
    if len(x) == 0 or len(x) != len(y):
        raise InputError(f"x and y must be non-empty and of one length, got {len(x)} and {len(y)}")
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = model(x[start : start + batch_size].to(device))
        correct += int((logits.argmax(1) == y[start : start + batch_size].to(device)).sum())
    return correct / len(x)


def _loader(dataset: str):
    def load(n_examples: int | None = None, data_dir: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return load_test_set(dataset, n_examples, data_dir)

    load.__name__ = f"load_{dataset.replace('-', '_')}"
    load.__doc__ = f"The first ``n_examples`` {dataset} test images and labels, as RobustBench's loaders give them."
    return load


load_fashion_mnist = _loader("fashion-mnist")
load_cifar10 = _loader("cifar10")
load_cifar100 = _loader("cifar100")
load_imagenet = _loader("imagenet")
