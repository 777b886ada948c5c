"""Checkpoints: locate, verify (size and sha256 before any parsing) and load weights safely.

safetensors is preferred; ``.pt``/``.pth`` files are read only with
``torch.load(weights_only=True)``, which refuses pickles that would run code.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from robustbench_snn.data import cache_dir
from robustbench_snn.errors import CheckpointError

logger = logging.getLogger(__name__)

SAFE_SUFFIXES = (".safetensors",)
MAX_DOWNLOAD_BYTES = 4 << 30  # when a card gives no size
PICKLE_SUFFIXES = (".pt", ".pth")
_HTML_PREFIXES = (b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Checkpoint URLs: https only. A card's URL is untrusted input (it arrives by pull request), and
# file://, ftp:// or data: would let it read local files or reach anything else.
ALLOWED_SCHEMES = ("https",)
DOWNLOAD_TIMEOUT_S = 60
# The whole transfer's limit: a server that drips bytes, or streams without end, is cut off.
DOWNLOAD_TOTAL_S = 1800
# A transfer that makes no real progress stops early: under DOWNLOAD_MIN_RATE bytes a second over
# any window of DOWNLOAD_RATE_WINDOW_S seconds (a server dripping bytes would otherwise hold a user
# until DOWNLOAD_TOTAL_S).
DOWNLOAD_MIN_RATE = 4096
DOWNLOAD_RATE_WINDOW_S = 60.0
DOWNLOAD_CHUNK = 1 << 20


def redirect_allowed(origin: str, target: str) -> bool:
    """Whether a download may follow a redirect: to an allowed scheme, never from https to less."""
    old, new = (urllib.parse.urlparse(url).scheme.lower() for url in (origin, target))
    return new in ALLOWED_SCHEMES and not (old == "https" and new != "https")


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, request, handle, code, message, headers, new_url):
        if not redirect_allowed(request.full_url, new_url):
            raise CheckpointError(f"checkpoint URL {request.full_url!r} redirects to {new_url!r}, which is not allowed")
        return super().redirect_request(request, handle, code, message, headers, new_url)


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def download(url: str, sha256: str, size_bytes: int | None = None, progress: bool = True) -> Path:
    """Fetch ``url`` into the user's cache, named by its sha256, and return the verified file.

    The file is written to a private temporary name and published into the cache only once its
    size and hash match, so the cache never holds a file whose content is not its name's hash (a
    card cannot occupy another card's slot, and a web page is never kept). A cached file is
    checked again before use. A server that stops answering times out after DOWNLOAD_TIMEOUT_S, a
    transfer that has not finished after DOWNLOAD_TOTAL_S is cut off, and a redirect may not leave
    the allowed schemes or downgrade https.
    """
    scheme = urllib.parse.urlparse(url).scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise CheckpointError(f"checkpoint URL {url!r}: only {', '.join(ALLOWED_SCHEMES)} URLs are allowed")
    folder = _private_dir(cache_dir() / "checkpoints")
    target = folder / f"{sha256}{Path(urllib.parse.urlparse(url).path).suffix}"
    if target.is_file():
        if sha256_of(target) == sha256:
            return target
        logger.warning("removing %s from the cache: its content does not match its hash", target)
        target.unlink()
    handle, partial_name = tempfile.mkstemp(dir=folder, prefix=".download-", suffix=".part")
    partial = Path(partial_name)
    limit = size_bytes if size_bytes is not None else MAX_DOWNLOAD_BYTES
    deadline = time.monotonic() + DOWNLOAD_TOTAL_S
    opener = urllib.request.build_opener(_CheckedRedirects)
    try:
        with os.fdopen(handle, "wb") as sink, opener.open(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {Path(target).name[:12]}", disable=not progress) as bar:
                received = 0
                window_start, window_received = time.monotonic(), 0
                # read1 returns what has arrived, so a dripping server meets the deadline and rate checks
                while block := response.read1(DOWNLOAD_CHUNK):
                    received += len(block)
                    window_received += len(block)
                    if received > limit:
                        raise CheckpointError(f"cannot download checkpoint {url}: larger than the {limit} bytes expected")
                    now = time.monotonic()
                    if now > deadline:
                        raise CheckpointError(f"cannot download checkpoint {url}: not finished within {DOWNLOAD_TOTAL_S} s")
                    if now - window_start >= DOWNLOAD_RATE_WINDOW_S:
                        if window_received < DOWNLOAD_MIN_RATE * (now - window_start):
                            raise CheckpointError(
                                f"cannot download checkpoint {url}: {window_received} bytes in the last {now - window_start:.0f} s, "
                                f"under {DOWNLOAD_MIN_RATE // 1024} kB/s: the transfer makes no real progress"
                            )
                        window_start, window_received = now, 0
                    sink.write(block)
                    bar.update(len(block))
        verify(partial, sha256, size_bytes)
        partial.replace(target)
    except TimeoutError:
        raise CheckpointError(f"cannot download checkpoint {url}: no answer within {DOWNLOAD_TIMEOUT_S} s") from None
    except (OSError, urllib.error.URLError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise CheckpointError(f"cannot download checkpoint {url}: {reason}") from None
    except CheckpointError as error:
        raise CheckpointError(f"{error} (downloaded from {url}; nothing was kept)") from None
    finally:
        partial.unlink(missing_ok=True)
    return target


def verify(path: Path, sha256: str | None = None, size_bytes: int | None = None) -> str:
    """Check that ``path`` is a plausible weights file with the expected size and hash; return its hash."""
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a regular file (a folder, device or pipe?)")
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
            first_line = first_line.split(" Re-running `torch.load` with")[0].split(" In PyTorch 2.6")[0]
            raise CheckpointError(
                f"refused to load checkpoint {path}: it is not a plain tensor file and may run code when "
                f"unpickled (torch.load with weights_only=True said: {first_line}); convert it to .safetensors"
            ) from None
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
            raise CheckpointError(f"checkpoint {path} does not hold a state dict of tensors")
        return state
    raise CheckpointError(f"checkpoint {path}: unsupported file type {suffix!r}; use .safetensors (preferred), .pt or .pth")


def write_state_dict(state: dict[str, torch.Tensor], path: Path) -> tuple[str, int]:
    """Save weights as safetensors; return (sha256, size in bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: value.detach().contiguous().cpu() for key, value in state.items()}, str(path))
    return sha256_of(path), path.stat().st_size
