"""RobustBench's ``robustbench.utils``: `load_model` by name and `clean_accuracy`."""

from __future__ import annotations

import os

import torch
from torch import nn

from robustbench_snn.errors import UserError
from robustbench_snn.evaluation.inputs import InputError
from robustbench_snn.registry import load_model as load_registered
from robustbench_snn.robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel, dataset_name, threat_model_name


def load_model(
    model_name: str,
    model_dir: str | os.PathLike = "./models",
    dataset: str | BenchmarkDataset = BenchmarkDataset.fashion_mnist,
    threat_model: str | ThreatModel = ThreatModel.Linf,
    custom_checkpoint: str = "",
    norm: str | None = None,
) -> nn.Module:
    """A registered model by name, as RobustBench's ``load_model``: images in [0, 1] -> logits.

    ``dataset`` must be the model's own; ``model_dir`` is accepted for RobustBench scripts and
    never written to (our checkpoints ship with the package or sit in a private cache); a
    ``custom_checkpoint`` replaces the registered weights.
    """
    threat_model_name(norm or threat_model)
    model = load_registered(model_name, checkpoint=custom_checkpoint or None)
    if model.card.dataset != dataset_name(dataset):
        raise UserError(f"model {model_name!r} is a {model.card.dataset} model, not {dataset_name(dataset)}")
    return model


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
