"""MNIST-style IDX files (Fashion-MNIST, MNIST): found on disk, in Debian's package or inside this
package (Fashion-MNIST's test split), downloaded by torchvision otherwise; header, counts, size and
labels checked before use."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset
from torchvision import datasets

from robustbench_snn.data.info import EMBEDDED_DIR, DatasetInfo, not_found_error
from robustbench_snn.errors import DataError

logger = logging.getLogger(__name__)

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

_IDX_FOLDERS = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}
# No MNIST-style split is larger (MNIST's training images are 47 MB).
MAX_IDX_BYTES = 1 << 30
_IDX_DOWNLOADERS = {"fashion-mnist": datasets.FashionMNIST, "mnist": datasets.MNIST}


def _idx_files(split: str) -> tuple[str, str]:
    prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _find_idx(folders: list[Path], split: str, yours: int = 0) -> tuple[Path, Path] | None:
    """The first folder holding both IDX files of the split, plain or gzipped. The first ``yours``
    folders are the user's: one holding some of the split's files but not both as regular files
    (only the images, a FIFO in place of a file) is a `DataError`, never a silent fall back to
    another copy of the data."""
    for number, folder in enumerate(folders):
        found, present = [], []
        for stem in _idx_files(split):
            candidates = [folder / stem, folder / f"{stem}.gz"]
            found.append(next((path for path in candidates if path.is_file()), None))
            present += [path for path in candidates if path.exists() or path.is_symlink()]
        if all(found):
            return found[0], found[1]
        if number < yours and present:
            unusable = [path.name for path in present if not path.is_file()]
            problem = f"{', '.join(unusable)} not a regular file" if unusable else f"only {', '.join(path.name for path in present)}"
            raise DataError(
                f"{folder} holds the {split} split's IDX files in part ({problem}); it needs both "
                f"{' and '.join(_idx_files(split))} (plain or .gz) as regular files"
            )
    return None


# IDX type code of unsigned bytes, the only element type MNIST-style files use.
_IDX_UBYTE = 0x08


def _idx_array(path: Path, dimensions: int) -> np.ndarray:
    """An IDX file (plain or gzipped) as an array, every part of it checked before it is trusted:
    the magic number, the number of dimensions, and a body of exactly the size the header states
    (read no further, so a gzip bomb or a lying header never fills memory)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            header = handle.read(4 + 4 * dimensions)
            if len(header) < 4 or header[:2] != b"\0\0" or header[2] != _IDX_UBYTE or header[3] != dimensions:
                raise DataError(f"{path} is not an IDX file of {dimensions}-dimensional unsigned bytes (bad magic number)")
            if len(header) < 4 + 4 * dimensions:
                raise DataError(f"{path}: the header is cut short")
            shape = tuple(int.from_bytes(header[4 + 4 * axis : 8 + 4 * axis], "big") for axis in range(dimensions))
            expected = int(np.prod(shape, dtype=np.int64))
            if expected > MAX_IDX_BYTES:
                raise DataError(f"{path}: the header states {expected} bytes of data, more than any dataset here has")
            body = handle.read(expected + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataError(f"cannot read {path}: {error}") from None
    if len(body) != expected:
        held = f"more than {expected}" if len(body) > expected else str(len(body))
        raise DataError(f"{path}: the header states {expected} bytes of data, the file holds {held}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _read_idx(images_path: Path, labels_path: Path, info: DatasetInfo) -> TensorDataset:
    """The images and labels of one split, checked against each other and the dataset."""
    images, labels = _idx_array(images_path, 3), _idx_array(labels_path, 1)
    if images.shape[1:] != info.input_shape[1:]:
        found, wanted = "x".join(map(str, images.shape[1:])), "x".join(map(str, info.input_shape[1:]))
        raise DataError(f"{images_path}: images of {found} pixels, not {wanted}")
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} {len(labels)} labels")
    if len(labels) and int(labels.max()) >= info.num_classes:
        raise DataError(f"{labels_path}: label {int(labels.max())} is outside the {info.num_classes} classes")
    return TensorDataset(torch.from_numpy(images.copy()).unsqueeze(1).float().div_(255.0), torch.from_numpy(labels.astype(np.int64)))


def _load_idx(info: DatasetInfo, split: str, root: Path, download: bool) -> Dataset:
    folder = _IDX_FOLDERS[info.name]
    candidates = [root / folder / "raw", root / info.name, root]
    yours = len(candidates)
    if info.name == "fashion-mnist":
        candidates.append(DEBIAN_FASHION_MNIST)
        if split == "test":
            candidates.append(EMBEDDED_DIR / "fashion-mnist")
    found = _find_idx(candidates, split, yours)
    reason = ""
    if found is None and download:
        try:
            _IDX_DOWNLOADERS[info.name](root, train=split == "train", download=True)
        except (OSError, RuntimeError) as error:
            reason = f"download failed: {error}"
        found = _find_idx(candidates, split, yours)
    if found is None:
        raise not_found_error(info, split, candidates, reason)
    images_path, labels_path = found
    logger.debug("reading %s from %s", info.name, images_path.parent)
    return _read_idx(images_path, labels_path, info)


# This family's built-in datasets (registered by `robustbench_snn.data` the first time it is read).
BUILT_IN = (
    DatasetInfo(
        name="fashion-mnist",
        loader=_load_idx,
        num_classes=10,
        input_shape=(1, 28, 28),
        mean=(0.2860,),
        std=(0.3530,),
        linf_eps=0.1,
        l2_eps=1.0,
        how_to_get="the test split ships with the package; for the training split run "
        "`apt-get install dataset-fashion-mnist` (Debian) or go online so torchvision "
        "can download it",
    ),
    DatasetInfo(
        name="mnist",
        loader=_load_idx,
        num_classes=10,
        input_shape=(1, 28, 28),
        mean=(0.1307,),
        std=(0.3081,),
        linf_eps=0.3,
        l2_eps=2.0,
        how_to_get="go online once so torchvision can download it, or copy the four IDX files into <root>/MNIST/raw/",
    ),
)
