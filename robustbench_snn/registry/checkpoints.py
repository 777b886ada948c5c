"""Checkpoints: locate, verify (size and sha256 before any parsing) and load weights safely.

safetensors is preferred; ``.pt``/``.pth`` files are read only with
``torch.load(weights_only=True)``, which refuses pickles that would run code.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import urllib.error
import urllib.request
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from robustbench_snn.data import cache_dir
from robustbench_snn.errors import CheckpointError

logger = logging.getLogger(__name__)

SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pt", ".pth")
_HTML_PREFIXES = (b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, sha256: str) -> Path:
    """Fetch ``url`` into the cache (named by its hash, so a verified copy is reused)."""
    target = cache_dir() / "checkpoints" / f"{sha256}{Path(url).suffix}"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".part{os.getpid()}")
    logger.info("downloading %s", url)
    try:
        urllib.request.urlretrieve(url, partial)
    except (OSError, urllib.error.URLError, ValueError) as error:
        partial.unlink(missing_ok=True)
        raise CheckpointError(f"cannot download checkpoint {url}: {error}") from None
    partial.replace(target)
    return target


def verify(path: Path, sha256: str | None = None, size_bytes: int | None = None) -> str:
    """Check that ``path`` is a plausible weights file with the expected size and hash; return its hash."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    with open(path, "rb") as handle:
        head = handle.read(512).lstrip().lower()
    if head.startswith(_HTML_PREFIXES):
        raise CheckpointError(
            f"checkpoint {path} is an HTML page, not weights (a download that saved a web page?)"
            + (f"; expected sha256 {sha256}" if sha256 else "")
        )
    actual_size = path.stat().st_size
    if size_bytes is not None and actual_size != size_bytes:
        raise CheckpointError(
            f"checkpoint {path} has {actual_size} bytes, the card says {size_bytes} "
            f"(truncated or a different file); expected sha256 {sha256}"
        )
    actual = sha256_of(path)
    if sha256 is not None and actual != sha256:
        raise CheckpointError(f"checkpoint {path} has sha256 {actual}, expected {sha256}")
    return actual


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load a state dict without executing anything stored in the file."""
    suffix = path.suffix.lower()
    if suffix in SAFE_SUFFIXES:
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"checkpoint {path} is not a readable safetensors file: {error}") from None
    if suffix in PICKLE_SUFFIXES:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CheckpointError(
                f"refused to load checkpoint {path}: it is not a plain tensor file "
                f"(torch.load with weights_only=True said: {first_line})"
            ) from None
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
            raise CheckpointError(f"checkpoint {path} does not hold a state dict of tensors")
        return state
    raise CheckpointError(
        f"checkpoint {path}: unsupported file type {suffix!r}; use .safetensors (preferred), .pt or .pth"
    )


def write_state_dict(state: dict[str, torch.Tensor], path: Path) -> tuple[str, int]:
    """Save weights as safetensors; return (sha256, size in bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: value.detach().contiguous().cpu() for key, value in state.items()}, str(path))
    return sha256_of(path), path.stat().st_size
