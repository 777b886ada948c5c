"""CIFAR-10 and CIFAR-100 from their pickled python batches, read by an unpickler that refuses
anything but arrays and plain containers (torchvision's only guard is the MD5 of the official files)."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import datasets

from robustbench_snn.data.info import DatasetInfo, not_found_error
from robustbench_snn.errors import UserError

logger = logging.getLogger(__name__)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and plain numpy arrays, and nothing that can run code.

    CIFAR's python batches are pickles: unpickled as they are, a file that says it is a CIFAR batch
    could run anything. torchvision guards against that with the MD5 of the official files; repacked
    copies (and our tests' small files) have other checksums, so we read them with this instead.
    """

    ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it asks to load {module}.{name}, which a CIFAR file never does")


def _read_cifar_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            data = _ArrayUnpickler(handle, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as error:
        raise UserError(f"{path} is not a CIFAR batch file; refused to read it ({error})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a CIFAR batch file (a pickled {type(data).__name__}, not a dict)")
    return data


class _CifarFiles(Dataset):
    """A CIFAR split read from torchvision's folder layout (``cifar-10-batches-py/`` etc.) with `_ArrayUnpickler`."""

    def __init__(self, folder: Path, files: list[str], label_key: str, classes: int) -> None:
        images, labels = [], []
        for name in files:
            batch = _read_cifar_pickle(folder / name)
            try:
                data = torch.as_tensor(np.asarray(batch["data"], dtype=np.uint8))
                images.append(data.reshape(-1, 3, 32, 32))
                labels.append(torch.as_tensor(np.asarray(batch[label_key], dtype=np.int64)))
            except (KeyError, ValueError, RuntimeError, TypeError) as error:
                raise UserError(f"{folder / name} is not a CIFAR batch file ({type(error).__name__}: {error})") from None
        self.images = torch.cat(images).float().div_(255.0)
        self.labels = torch.cat(labels)
        if len(self.images) != len(self.labels):
            raise UserError(f"{folder}: the CIFAR files hold {len(self.images)} images but {len(self.labels)} labels")
        outside = (self.labels < 0) | (self.labels >= classes)
        if outside.any():
            raise UserError(
                f"{folder}: label {int(self.labels[outside][0])} is outside the {classes} classes (0 to {classes - 1}); "
                "these are not CIFAR files as torchvision writes them"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


def _load_cifar(info: DatasetInfo, split: str, root: Path, download: bool) -> Dataset:
    downloader = datasets.CIFAR10 if info.name == "cifar10" else datasets.CIFAR100
    folder = root / downloader.base_folder
    files = [name for name, _ in (downloader.train_list if split == "train" else downloader.test_list)]
    label_key = "labels" if info.name == "cifar10" else "fine_labels"
    reason = ""
    if download and not all((folder / name).is_file() for name in files):
        try:  # torchvision fetches the official archive and checks its MD5
            downloader(root, train=split == "train", download=True)
        except (OSError, RuntimeError) as error:
            reason = f"download failed: {error}"
    if not all((folder / name).is_file() for name in files):
        raise not_found_error(info, split, [folder], reason)
    return _CifarFiles(folder, files, label_key, info.num_classes)


# This family's built-in datasets (registered by `robustbench_snn.data` the first time it is read).
BUILT_IN = (
    DatasetInfo(
        name="cifar10",
        loader=_load_cifar,
        num_classes=10,
        input_shape=(3, 32, 32),
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        linf_eps=8 / 255,
        l2_eps=0.5,
        how_to_get="go online once so torchvision can download it, or unpack "
        "cifar-10-python.tar.gz into <root>/ (giving <root>/cifar-10-batches-py/)",
    ),
    DatasetInfo(
        name="cifar100",
        loader=_load_cifar,
        num_classes=100,
        input_shape=(3, 32, 32),
        mean=(0.5071, 0.4865, 0.4409),
        std=(0.2673, 0.2564, 0.2762),
        linf_eps=8 / 255,
        l2_eps=0.5,
        how_to_get="go online once so torchvision can download it, or unpack "
        "cifar-100-python.tar.gz into <root>/ (giving <root>/cifar-100-python/)",
    ),
)
