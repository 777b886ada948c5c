"""RobustBench's ``robustbench.eval.benchmark``: clean and robust accuracy of one model."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

from robustbench_snn.errors import UserError
from robustbench_snn.evaluation import benchmark as evaluate
from robustbench_snn.robustbench.data import ROBUSTBENCH_DATA_DIR, data_folder
from robustbench_snn.robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel, dataset_name, threat_model_name


def benchmark(
    model: nn.Module,
    n_examples: int = 10000,
    dataset: str | BenchmarkDataset = BenchmarkDataset.fashion_mnist,
    threat_model: str | ThreatModel = ThreatModel.Linf,
    to_disk: bool = False,
    model_name: str | None = None,
    data_dir: str | None = ROBUSTBENCH_DATA_DIR,
    corruptions_data_dir: str | None = None,
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
    ``log_path`` receives this run's log lines; ``attack`` and ``seed`` are this benchmark's own."""
    unsupported = {"preprocessing": preprocessing, "aa_state_path": aa_state_path, "corruptions_data_dir": corruptions_data_dir}
    given = [name for name, value in unsupported.items() if value is not None]
    if given:
        raise UserError(f"{', '.join(given)}: RobustBench options this benchmark does not support")
    if isinstance(model, Sequence) or (isinstance(device, Sequence) and not isinstance(device, str)):
        raise UserError("benchmarking several models or devices at once is not supported; pass one model and one device")
    handler = logging.FileHandler(log_path) if log_path else None
    package_logger = logging.getLogger("robustbench_snn")
    if handler is not None:
        package_logger.addHandler(handler)
    try:
        record = evaluate(
            model,
            dataset=dataset_name(dataset),
            attack=attack,
            n_examples=n_examples,
            seed=seed,
            batch_size=batch_size,
            data_dir=data_folder(data_dir),
            device=str(device or "cpu"),
            overrides={"eps": eps, "norm": threat_model_name(threat_model)},
            store=to_disk,
            model_name=model_name,
        )
    finally:
        if handler is not None:
            package_logger.removeHandler(handler)
            handler.close()
    return record.clean_accuracy, record.robust_accuracy
