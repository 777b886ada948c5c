"""RobustBench's ``robustbench.data`` loaders: the first ``n_examples`` test images and labels.

RobustBench downloads into ``data_dir`` (default ``./data``); this benchmark never downloads from
here: Fashion-MNIST's test split ships with the package, the others are read from ``data_dir`` (or
``$RSC_BENCH_DATA``) in their usual on-disk formats. RobustBench's default ``./data`` that does not
exist therefore means "where this benchmark looks by default", not an empty folder to fill.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch

from robustbench_snn.data import load_test_set
from robustbench_snn.errors import UserError

ROBUSTBENCH_DATA_DIR = "./data"

Loader = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def data_folder(data_dir: str | os.PathLike | None) -> str | os.PathLike | None:
    """The folder to read, or None for our default places (RobustBench's default folder, absent)."""
    if data_dir is None or (str(data_dir) == ROBUSTBENCH_DATA_DIR and not Path(data_dir).exists()):
        return None
    return data_dir


def _loader(dataset: str, default_examples: int | None) -> Loader:
    def load(
        n_examples: int | None = default_examples,
        data_dir: str | os.PathLike | None = ROBUSTBENCH_DATA_DIR,
        transforms_test: object = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if transforms_test is not None:
            raise UserError("transforms_test is not supported: images are the dataset's own, as tensors in [0, 1]")
        return load_test_set(dataset, n_examples, data_folder(data_dir))

    load.__name__ = load.__qualname__ = f"load_{dataset.replace('-', '_')}"
    load.__doc__ = f"The first ``n_examples`` {dataset} test images (in [0, 1]) and labels, as RobustBench's loader gives them."
    return load


load_cifar10 = _loader("cifar10", None)
load_cifar100 = _loader("cifar100", None)
load_imagenet = _loader("imagenet", 5000)
load_fashion_mnist = _loader("fashion-mnist", None)
