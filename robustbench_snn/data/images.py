"""ImageNet-style folders of image files (Tiny-ImageNet, ImageNet), each file checked before it is
decoded (`checked_image`)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import datasets, transforms

from robustbench_snn.data.info import DatasetInfo, not_found_error
from robustbench_snn.errors import DataError

logger = logging.getLogger(__name__)

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


def _text(path: Path) -> str:
    """A text file of a dataset's layout, or a `DataError` saying why it is not one."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8 text (byte {error.start}); Tiny-ImageNet's text files are plain ASCII") from None


class TinyImageNetVal(Dataset):
    """Tiny-ImageNet's validation split: ``val/images/*.JPEG`` labelled by ``val_annotations.txt``
    (each line a plain file name in ``val/images`` and a class of ``wnids.txt``)."""

    def __init__(self, root: Path, transform: transforms.Compose) -> None:
        wnids = _text(root / "wnids.txt").split()
        self.classes = sorted(wnids)
        self.class_to_idx = {wnid: index for index, wnid in enumerate(self.classes)}
        self.samples = []
        annotations = root / "val" / "val_annotations.txt"
        for number, line in enumerate(_text(annotations).splitlines(), 1):
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
        raise not_found_error(info, split, [base], str(error)) from None


def _load_imagenet(info: DatasetInfo, split: str, root: Path, download: bool) -> Dataset:
    folder = root / "imagenet" / ("train" if split == "train" else "val")
    preprocess = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor()])
    try:
        return datasets.ImageFolder(str(folder), transform=preprocess, loader=checked_image)
    except OSError as error:
        raise not_found_error(info, split, [folder], str(error)) from None


# This family's built-in datasets (registered by `robustbench_snn.data` the first time it is read).
BUILT_IN = (
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
