"""Datasets: find, load and describe the benchmark's datasets as tensors in [0, 1].

Loaders are torchvision code, except three readers that check what they read: CIFAR's pickled
batches, where anything but arrays and plain containers is refused (torchvision's only guard is
the MD5 of the official files), MNIST-style IDX files, whose header, counts, size and labels are
checked before use, and image files in ImageNet-style folders (`checked_image`); a bad file is one
`DataError` naming it. Data
are looked for under one root (``--data-dir``, else ``$RSC_BENCH_DATA``, else the user cache
folder); Fashion-MNIST is also found where Debian's ``dataset-fashion-mnist`` installs it, and its test split ships inside this package, so
evaluating on it never needs a download.
"""

from __future__ import annotations

import gzip
import logging
import os
import pickle
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset
from torchvision import datasets, transforms

from robustbench_snn.errors import DataError, DatasetNotFoundError, UserError
from robustbench_snn.plugins import Registry

logger = logging.getLogger(__name__)

EMBEDDED_DIR = Path(__file__).parent
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
SPLITS = ("train", "test")


@dataclass(frozen=True, kw_only=True)
class DatasetInfo:
    """What a model needs to know about a dataset: shape, classes and normalisation."""

    name: str
    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    linf_eps: float
    l2_eps: float
    how_to_get: str
    # ``loader(info, split, root, download)``: the split's items as (image in [0, 1], label)
    loader: Callable[[DatasetInfo, str, Path, bool], Dataset] = field(compare=False, repr=False)

    def default_eps(self, norm: str) -> float:
        """The radius of the dataset's standard threat model for ``norm`` (Linf or L2)."""
        return self.linf_eps if norm == "Linf" else self.l2_eps


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
        raise _not_found(info, split, [root], "the data folder given does not exist")
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


def _not_found(info: DatasetInfo, split: str, looked_in: list[Path], reason: str = "") -> DatasetNotFoundError:
    places = "\n".join(f"  - {place}" for place in looked_in)
    detail = f" ({reason})" if reason else ""
    return DatasetNotFoundError(
        f"dataset {info.name!r} ({split} split) was not found{detail}.\nLooked in:\n{places}\n"
        f"To get it: {info.how_to_get}. Point --data-dir or $RSC_BENCH_DATA at the root."
    )


# MNIST-style IDX files -------------------------------------------------------------------

_IDX_FOLDERS = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}
# No MNIST-style split is larger (MNIST's training images are 47 MB).
MAX_IDX_BYTES = 1 << 30
_IDX_DOWNLOADERS = {"fashion-mnist": datasets.FashionMNIST, "mnist": datasets.MNIST}


def _idx_files(split: str) -> tuple[str, str]:
    prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _find_idx(folders: list[Path], split: str) -> tuple[Path, Path] | None:
    """The first folder holding both IDX files of the split, plain or gzipped."""
    for folder in folders:
        found = []
        for stem in _idx_files(split):
            candidates = [folder / stem, folder / f"{stem}.gz"]
            found.append(next((path for path in candidates if path.is_file()), None))
        if all(found):
            return found[0], found[1]
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
    if info.name == "fashion-mnist":
        candidates.append(DEBIAN_FASHION_MNIST)
        if split == "test":
            candidates.append(EMBEDDED_DIR / "fashion-mnist")
    found = _find_idx(candidates, split)
    reason = ""
    if found is None and download:
        try:
            _IDX_DOWNLOADERS[info.name](root, train=split == "train", download=True)
        except (OSError, RuntimeError) as error:
            reason = f"download failed: {error}"
        found = _find_idx(candidates, split)
    if found is None:
        raise _not_found(info, split, candidates, reason)
    images_path, labels_path = found
    logger.debug("reading %s from %s", info.name, images_path.parent)
    return _read_idx(images_path, labels_path, info)


# CIFAR -----------------------------------------------------------------------------------


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

    def __init__(self, folder: Path, files: list[str], label_key: str) -> None:
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
        raise _not_found(info, split, [folder], reason)
    return _CifarFiles(folder, files, label_key)


# ImageNet-style folders ------------------------------------------------------------------


# Bounds on one image file: far above any real ImageNet JPEG, far below a decompression bomb.
MAX_IMAGE_BYTES = 64 << 20
MAX_IMAGE_PIXELS = 40_000_000


def checked_image(path: str | os.PathLike) -> Image.Image:
    """An image file as RGB, refused with a `DataError` naming it when it is not a regular file, is
    empty or oversized, is not an image, or decodes to more than MAX_IMAGE_PIXELS pixels (the size
    is read from the header, before anything is decoded)."""
    path = Path(path)
    try:
        status = path.stat()
    except OSError as error:
        raise DataError(f"cannot read image {path}: {error.strerror}") from None
    if not stat.S_ISREG(status.st_mode):
        raise DataError(f"image {path} is not a regular file")
    if not 0 < status.st_size <= MAX_IMAGE_BYTES:
        raise DataError(f"image {path} has {status.st_size} bytes; an image file holds 1 to {MAX_IMAGE_BYTES}")
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise DataError(f"image {path} is {width}x{height} pixels, more than {MAX_IMAGE_PIXELS} (a decompression bomb?)")
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"image {path} cannot be decoded: {error}") from None


class TinyImageNetVal(Dataset):
    """Tiny-ImageNet's validation split: ``val/images/*.JPEG`` labelled by ``val_annotations.txt``
    (each line a plain file name in ``val/images`` and a class of ``wnids.txt``)."""

    def __init__(self, root: Path, transform: transforms.Compose) -> None:
        wnids = (root / "wnids.txt").read_text().split()
        self.classes = sorted(wnids)
        self.class_to_idx = {wnid: index for index, wnid in enumerate(self.classes)}
        self.samples = []
        annotations = root / "val" / "val_annotations.txt"
        for number, line in enumerate(annotations.read_text().splitlines(), 1):
            fields = line.split("\t")
            if len(fields) < 2:
                continue
            name, wnid = fields[0], fields[1]
            if Path(name).name != name or name in ("", ".", ".."):
                raise DataError(f"{annotations}:{number}: {name!r} is not a plain file name in val/images")
            if wnid not in self.class_to_idx:
                raise DataError(f"{annotations}:{number}: class {wnid!r} is not in wnids.txt")
            self.samples.append((root / "val" / "images" / name, self.class_to_idx[wnid]))
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        return self.transform(checked_image(path)), label


def _load_tiny_imagenet(info: DatasetInfo, split: str, root: Path, download: bool) -> Dataset:
    base = root / "tiny-imagenet-200"
    to_tensor = transforms.ToTensor()
    try:
        if split == "train":
            return datasets.ImageFolder(str(base / "train"), transform=to_tensor, loader=checked_image)
        return TinyImageNetVal(base, to_tensor)
    except (OSError, KeyError) as error:
        raise _not_found(info, split, [base], str(error)) from None


def _load_imagenet(info: DatasetInfo, split: str, root: Path, download: bool) -> Dataset:
    folder = root / "imagenet" / ("train" if split == "train" else "val")
    preprocess = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor()])
    try:
        return datasets.ImageFolder(str(folder), transform=preprocess, loader=checked_image)
    except OSError as error:
        raise _not_found(info, split, [folder], str(error)) from None


# The built-in datasets (registered the first time `DATASETS` is read).
BUILT_IN_DATASETS = (
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
    DatasetInfo(
        name="tiny-imagenet",
        loader=_load_tiny_imagenet,
        num_classes=200,
        input_shape=(3, 64, 64),
        mean=(0.4802, 0.4481, 0.3975),
        std=(0.2770, 0.2691, 0.2821),
        linf_eps=8 / 255,
        l2_eps=0.5,
        how_to_get="unpack tiny-imagenet-200.zip into <root>/ (giving <root>/tiny-imagenet-200/{wnids.txt,train,val})",
    ),
    DatasetInfo(
        name="imagenet",
        loader=_load_imagenet,
        num_classes=1000,
        input_shape=(3, 224, 224),
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        linf_eps=4 / 255,
        l2_eps=3.0,
        how_to_get="place the ILSVRC2012 images as <root>/imagenet/{train,val}/<wnid>/*.JPEG (one folder per class, e.g. after valprep.sh)",
    ),
)


def _register_built_ins() -> None:
    for info in BUILT_IN_DATASETS:
        register_dataset(info)


# Every dataset by name: the built-in ones, then those of installed plug-in packages.
DATASETS: Registry[DatasetInfo] = Registry("dataset", "robustbench_snn.datasets", _register_built_ins)
