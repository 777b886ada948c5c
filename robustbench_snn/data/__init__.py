"""Datasets: find, load and describe the benchmark's datasets as tensors in [0, 1].

The built-in datasets live one family per module: `idx` (Fashion-MNIST, MNIST), `cifar` and
`images` (Tiny-ImageNet, ImageNet), each with readers that check what they read (a bad file is one
`DataError` naming it); another dataset is one `register_dataset` call, here or in a plug-in. Data
are looked for under one root (``--data-dir``, else ``$RSC_BENCH_DATA``, else the user cache
folder); Fashion-MNIST is also found where Debian's ``dataset-fashion-mnist`` installs it, and its test split ships inside this package, so
evaluating on it never needs a download.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from robustbench_snn.data.info import EMBEDDED_DIR, DatasetInfo, not_found_error  # noqa: F401 - the package's names too
from robustbench_snn.errors import UserError
from robustbench_snn.plugins import Registry

logger = logging.getLogger(__name__)

SPLITS = ("train", "test")


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    """Make a dataset available by ``info.name`` (cards, ``--dataset``, `load_dataset`)."""
    return DATASETS.register(info.name, info)


def dataset_info(name: str) -> DatasetInfo:
    """The description of a dataset, or a `UserError` listing the known names."""
    return DATASETS.lookup(name)


def cache_dir() -> Path:
    """The user cache folder of rsc-bench (``$XDG_CACHE_HOME/rsc-bench``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rsc-bench"


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """The data root: ``data_dir``, else ``$RSC_BENCH_DATA``, else the user cache folder."""
    if data_dir is not None:
        return Path(data_dir)
    if os.environ.get("RSC_BENCH_DATA"):
        return Path(os.environ["RSC_BENCH_DATA"])
    return cache_dir() / "data"


def load_dataset(
    name: str,
    split: str = "test",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> Dataset:
    """A dataset whose items are ``(image tensor in [0, 1], int label)``.

    Raises `DatasetNotFoundError` (which dataset, where it looked, how to get it) when the
    data are neither on disk nor downloadable.
    """
    info = dataset_info(name)
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    root = data_root(data_dir)
    if data_dir is not None and not root.is_dir():
        # an explicit folder that is not there is a mistake, never a reason to fall back elsewhere
        raise not_found_error(info, split, [root], "the data folder given does not exist")
    dataset = info.loader(info, split, root, download)
    logger.info("loaded %s/%s: %d images", name, split, len(dataset))
    return dataset


def load_test_set(name: str, n_examples: int | None = None, data_dir: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n_examples`` test images (in [0, 1]) and labels of a dataset as two tensors
    (all of them when None), in the split's order, as RobustBench's ``load_cifar10`` gives them."""
    test_set = first_examples(load_dataset(name, "test", data_dir), n_examples)
    images, labels = next(iter(DataLoader(test_set, batch_size=len(test_set))))
    return images, labels


def first_examples(dataset: Dataset, n_examples: int | None) -> Dataset:
    """The first ``n_examples`` items (RobustBench's convention), or all when None."""
    if n_examples is None or n_examples >= len(dataset):
        return dataset
    if n_examples <= 0:
        raise UserError(f"the number of examples must be positive, got {n_examples}")
    return Subset(dataset, range(n_examples))


def _register_built_ins() -> None:
    from robustbench_snn.data import cifar, idx, images

    for family in (idx, cifar, images):
        for info in family.BUILT_IN:
            register_dataset(info)


# Every dataset by name: the built-in ones, then those of installed plug-in packages.
DATASETS: Registry[DatasetInfo] = Registry("dataset", "robustbench_snn.datasets", _register_built_ins)
