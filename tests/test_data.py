"""Datasets: where data are found, the embedded split, and loaders on files in real on-disk formats."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_cifar10
from PIL import Image

from robustbench_snn.data import DATASETS, data_root, first_examples, idx, load_dataset
from robustbench_snn.errors import DatasetNotFoundError, UserError


def test_embedded_fashion_mnist_test_split_needs_no_download(tmp_path, monkeypatch):
    monkeypatch.setattr(idx, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    (tmp_path / "empty").mkdir()
    test_set = load_dataset("fashion-mnist", "test", data_dir=tmp_path / "empty", download=False)
    images, labels = test_set.tensors
    assert images.shape == (10000, 1, 28, 28)
    assert images.dtype == torch.float32 and 0 <= images.min() and images.max() <= 1
    assert sorted(labels.unique().tolist()) == list(range(10))
    assert torch.bincount(labels).tolist() == [1000] * 10


def test_data_root_prefers_flag_then_environment_then_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RSC_BENCH_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "flag") == tmp_path / "flag"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("RSC_BENCH_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_root() == tmp_path / "cache" / "rsc-bench" / "data"


def _write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, compress: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    image_bytes = np.array([0, 0, 8, 3], dtype=np.uint8).tobytes() + np.array(images.shape, dtype=">i4").tobytes() + images.tobytes()
    label_bytes = np.array([0, 0, 8, 1], dtype=np.uint8).tobytes() + np.array(labels.shape, dtype=">i4").tobytes() + labels.tobytes()
    for name, payload in ((f"{prefix}-images-idx3-ubyte", image_bytes), (f"{prefix}-labels-idx1-ubyte", label_bytes)):
        if compress:
            with gzip.open(folder / f"{name}.gz", "wb") as handle:
                handle.write(payload)
        else:
            (folder / name).write_bytes(payload)


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_style_idx_files_under_the_data_root(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    _write_idx(tmp_path / "MNIST" / "raw", "train", images, labels, compress)
    train_set = load_dataset("mnist", "train", data_dir=tmp_path, download=False)
    loaded, targets = train_set.tensors
    assert torch.equal(targets, torch.tensor([3, 1, 4, 1, 5]))
    assert torch.allclose(loaded[:, 0] * 255, torch.from_numpy(images).float())


def test_fashion_mnist_is_found_where_debian_installs_it(tmp_path, monkeypatch):
    debian = tmp_path / "usr-share-datasets-fashion-mnist"
    _write_idx(debian, "train", np.zeros((2, 28, 28), dtype=np.uint8), np.array([7, 9], dtype=np.uint8), compress=True)
    monkeypatch.setattr(idx, "DEBIAN_FASHION_MNIST", debian)
    (tmp_path / "empty").mkdir()
    train_set = load_dataset("fashion-mnist", "train", data_dir=tmp_path / "empty", download=False)
    assert train_set.tensors[1].tolist() == [7, 9]


def test_cifar10_loader_reads_the_python_pickle_format(tmp_path):
    written = write_cifar10(tmp_path)
    test_set = load_dataset("cifar10", "test", data_dir=tmp_path, download=False)
    assert len(test_set) == 4
    image, label = test_set[0]
    assert image.shape == DATASETS["cifar10"].input_shape
    assert label == written["labels"][0]
    expected = torch.from_numpy(written["data"][0].reshape(3, 32, 32)).float() / 255
    assert torch.allclose(image, expected)
    assert len(load_dataset("cifar10", "train", data_dir=tmp_path, download=False)) == 20


def _write_jpeg(path: Path, seed: int, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, "JPEG")


def test_imagenet_loader_reads_an_image_folder(tmp_path):
    for index, wnid in enumerate(["n01440764", "n01443537"]):
        _write_jpeg(tmp_path / "imagenet" / "val" / wnid / f"ILSVRC2012_val_{index:08d}.JPEG", index, 300)
    val_set = load_dataset("imagenet", "test", data_dir=tmp_path, download=False)
    assert val_set.classes == ["n01440764", "n01443537"]
    image, label = val_set[1]
    assert image.shape == (3, 224, 224) and label == 1


def test_tiny_imagenet_loader_reads_train_folders_and_annotated_val(tmp_path):
    base = tmp_path / "tiny-imagenet-200"
    wnids = ["n01443537", "n01629819"]
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for index, wnid in enumerate(wnids):
        _write_jpeg(base / "train" / wnid / "images" / f"{wnid}_0.JPEG", index, 64)
    _write_jpeg(base / "val" / "images" / "val_0.JPEG", 5, 64)
    _write_jpeg(base / "val" / "images" / "val_1.JPEG", 6, 64)
    (base / "val" / "val_annotations.txt").write_text(f"val_0.JPEG\t{wnids[1]}\t0\t0\t63\t63\nval_1.JPEG\t{wnids[0]}\t0\t0\t63\t63\n")
    train_set = load_dataset("tiny-imagenet", "train", data_dir=tmp_path, download=False)
    assert [label for _, label in train_set.samples] == [0, 1]
    val_set = load_dataset("tiny-imagenet", "test", data_dir=tmp_path, download=False)
    assert [val_set[index][1] for index in range(2)] == [1, 0]
    assert val_set[0][0].shape == (3, 64, 64)


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "tiny-imagenet", "imagenet", "mnist"])
def test_missing_dataset_says_which_where_and_how(tmp_path, name):
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset(name, "test", data_dir=tmp_path, download=False)
    message = str(error.value)
    assert repr(name) in message
    assert str(tmp_path) in message
    assert "To get it:" in message


def test_first_examples_takes_the_head_of_the_split():
    test_set = load_dataset("fashion-mnist", "test", download=False)
    subset = first_examples(test_set, 5)
    assert len(subset) == 5 and torch.equal(subset[4][0], test_set[4][0])
    with pytest.raises(UserError):
        first_examples(test_set, 0)


def test_unknown_dataset_and_split_are_user_errors():
    with pytest.raises(UserError, match="unknown dataset 'svhn'"):
        load_dataset("svhn")
    with pytest.raises(UserError, match="unknown split"):
        load_dataset("fashion-mnist", "val")


@pytest.mark.parametrize("bad", ["not-an-image", "empty", "fifo", "bomb"])
def test_a_bad_file_in_an_image_folder_is_one_data_error_naming_it(tmp_path, bad):
    import os
    import struct
    import zlib

    from robustbench_snn.errors import DataError

    folder = tmp_path / "imagenet" / "val" / "n01440764"
    _write_jpeg(folder / "good.JPEG", 0, 300)
    target = folder / "bad.JPEG"
    if bad == "not-an-image":
        target.write_bytes(b"<html>not an image</html>")
    elif bad == "empty":
        target.write_bytes(b"")
    elif bad == "fifo":
        os.mkfifo(target)
    else:  # a tiny PNG whose header claims 100,000 x 100,000 pixels
        header = struct.pack(">IIBBBBB", 100_000, 100_000, 1, 0, 0, 0, 0)
        chunk = struct.pack(">I", len(header)) + b"IHDR" + header + struct.pack(">I", zlib.crc32(b"IHDR" + header))
        target.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND")))
    val_set = load_dataset("imagenet", "test", data_dir=tmp_path, download=False)
    bad_index = next(index for index, (path, _) in enumerate(val_set.samples) if path.endswith("bad.JPEG"))
    with pytest.raises(DataError, match="bad.JPEG"):
        val_set[bad_index]
    assert val_set[1 - bad_index][0].shape == (3, 224, 224)


@pytest.mark.parametrize(
    "line, message", [("../../etc/passwd\tn01443537", "not a plain file name"), ("val_0.JPEG\tn99999999", "not in wnids")]
)
def test_tiny_imagenet_annotations_cannot_leave_the_folder_or_name_unknown_classes(tmp_path, line, message):
    from robustbench_snn.errors import DataError

    base = tmp_path / "tiny-imagenet-200"
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("n01443537\n")
    _write_jpeg(base / "val" / "images" / "val_0.JPEG", 5, 64)
    (base / "val" / "val_annotations.txt").write_text(line + "\t0\t0\t63\t63\n")
    with pytest.raises(DataError, match=message):
        load_dataset("tiny-imagenet", "test", data_dir=tmp_path, download=False)
