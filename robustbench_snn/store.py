"""Stored results: tidy rows in ``results/<dataset>.jsonl``, one per evaluated configuration.

Rows are appended under an exclusive file lock with one write each, so concurrent runs lose
nothing and a reader never sees half a row. A configuration is identified by a hash of
everything that determines its numbers; an identical one already stored is reused. Unfinished
runs keep their finished batches in ``results/.partial/`` so that they resume.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from robustbench_snn.config import describe
from robustbench_snn.errors import UserError
from robustbench_snn.files import replacing
from robustbench_snn.shipped import shipped_folder

logger = logging.getLogger(__name__)

# The seed of official runs: a row made with another seed is never shown as official.
STANDARD_SEED = 0

# The official store: the repository's results/ (shipped inside the wheel), which feeds the
# leaderboard. Only the zoo scripts and a maintainer's explicit --results-dir write here.
OFFICIAL_RESULTS_DIR = shipped_folder("results")


def results_dir(override: str | os.PathLike | None = None) -> Path:
    """Where a user's runs are stored: ``override``, else ``$RSC_BENCH_RESULTS``, else the user's own
    data folder (never the official store unless asked for by name)."""
    if override is not None:
        if not str(override).strip():
            raise UserError("the results folder must be named, not empty")
        return Path(override)
    if os.environ.get("RSC_BENCH_RESULTS"):
        return Path(os.environ["RSC_BENCH_RESULTS"])
    return platformdirs.user_data_path("rsc-bench") / "results"


def reading_dir(override: str | os.PathLike | None = None) -> Path:
    """Where tables, plots and the leaderboard read rows: ``override``, else ``$RSC_BENCH_RESULTS``,
    else the official store."""
    if override is not None:
        if not Path(override).is_dir():
            raise UserError(f"results folder {override} does not exist")
        return Path(override)
    return Path(os.environ.get("RSC_BENCH_RESULTS") or OFFICIAL_RESULTS_DIR)


def config_hash(config: dict) -> str:
    """A stable identifier of a configuration (canonical JSON, sha256, 16 hex digits)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def regular_or_absent(path: Path) -> Path:
    """``path``, or a `UserError` if something other than a regular file is there (a folder, a FIFO
    or a device would raise, block or never end when opened as a results file)."""
    if path.exists() and not path.is_file():
        raise UserError(f"{path} is not a regular file; move it away or choose another results folder")
    return path


@contextmanager
def _locked(path: Path, mode: str) -> Iterator:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(regular_or_absent(path), mode) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if "a" in mode or "w" in mode else fcntl.LOCK_SH)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# Bounds a stored number must keep for the readers to use it (wider than any real run).
MAX_IMAGES = 10**9
MAX_SEED = 2**63
MAX_NESTING = 32


class StoredRow(BaseModel):
    """What every stored row must have for the readers (tables, plots, the leaderboard) to use it."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    model: str = Field(max_length=1000)
    dataset: str = Field(max_length=100)
    protocol: str = Field(max_length=1000)
    seed: int = Field(ge=0, lt=MAX_SEED)
    n_examples: int = Field(ge=1, le=MAX_IMAGES)
    timestamp: str = Field(max_length=100)
    clean_accuracy: float | None = Field(default=None, ge=0, le=1)
    robust_accuracy: float | None = Field(default=None, ge=0, le=1)
    clean_accuracy_one_draw: float | None = Field(default=None, ge=0, le=1)
    eps: float | None = Field(default=None, ge=0, le=1e6)
    eot: int | None = Field(default=None, ge=1, le=10**6)
    eval_draws: int | None = Field(default=None, ge=1, le=10**6)
    batch_size: int | None = Field(default=None, ge=1, le=MAX_IMAGES)
    runtime_s: float | None = Field(default=None, ge=0)
    flags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _robust_within_clean(self) -> "StoredRow":
        # A sample counts robust only if it is right on its clean input: no run writes more.
        if self.robust_accuracy is not None and self.clean_accuracy is not None and self.robust_accuracy > self.clean_accuracy + 1e-9:
            raise ValueError(f"robust accuracy {self.robust_accuracy} exceeds clean accuracy {self.clean_accuracy}")
        return self


def nesting_depth(raw: bytes) -> int:
    """How deeply a JSON text nests arrays and objects (strings skipped), without parsing it."""
    depth = deepest = 0
    for bracket in re.findall(rb"[\[\]{}]", re.sub(rb'"(?:\\.|[^"\\])*"', b"", raw)):
        depth += 1 if bracket in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest


class StoredAuditEntry(BaseModel):
    attack: str
    robust_accuracy: float = Field(ge=0, le=1)
    only_this: int = Field(ge=0)
    fooled_protocol_survivors: int = Field(ge=0)
    seconds: float = Field(ge=0)


class StoredAudit(BaseModel):
    """What the leaderboard reads of a stored audit (`robustbench_snn.audit.AuditReport`)."""

    model_config = ConfigDict(extra="allow")

    model: str
    dataset: str
    protocol: str
    n_examples: int = Field(ge=1)
    protocol_accuracy: float = Field(ge=0, le=1)
    worst_case_accuracy: float = Field(ge=0, le=1)
    entries: list[StoredAuditEntry]
    protocol_survivors: int = Field(ge=0)
    broken_survivors: int = Field(ge=0)
    control_kills: int = Field(ge=0)
    flagged: bool
    timestamp: str


def _read_jsonl(path: Path, schema: type[BaseModel] | None = None) -> list[dict]:
    """The rows of a JSON-lines file; a line that is not a valid row is skipped with a warning
    naming file and line, so one broken line never breaks a command."""
    if not regular_or_absent(path).exists():
        return []
    with _locked(path, "r") as handle:
        lines = handle.buffer.read().split(b"\n")
    rows = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            if nesting_depth(raw) > MAX_NESTING:
                raise ValueError(f"nested deeper than {MAX_NESTING} levels")
            row = json.loads(raw.decode("utf-8"))
            if not isinstance(row, dict):
                raise ValueError(f"a JSON {type(row).__name__}, not an object")
            if schema is not None:
                schema.model_validate(row)
        except (UnicodeDecodeError, ValueError, ValidationError) as error:
            reason = describe(error) if isinstance(error, ValidationError) else str(error).splitlines()[0]
            logger.warning("%s:%d: skipping a malformed row: %s", path, number, reason.strip())
            continue
        rows.append(row)
    return rows


def _append_line(path: Path, row: dict, unique_hash: str | None = None) -> Path:
    """Append ``row`` as one JSON line, in one write under the lock (other writers lose nothing).

    A file whose last line was cut off (a crash, a full disk) gets a newline first, so the new row
    is never glued to the broken one. With ``unique_hash``, nothing is written if a row with that
    ``config_hash`` is already there.
    """
    line = json.dumps(row, sort_keys=False, default=str) + "\n"
    with _locked(path, "a") as handle:
        if handle.tell() > 0:
            with open(path, "rb") as reader:
                content = reader.read()
            if unique_hash is not None and f'"config_hash": "{unique_hash}"'.encode() in content:
                logger.info("%s already holds configuration %s; not stored twice", path, unique_hash)
                return path
            if not content.endswith(b"\n"):
                line = "\n" + line
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def append_row(row: dict, directory: str | os.PathLike | None = None, replace: bool = False) -> Path:
    """Append one result row to its dataset's file, atomically with respect to other writers.

    A row whose configuration is already stored (two runs of one configuration at once) is not
    written twice, unless ``replace`` (a forced recomputation, which the newer row supersedes).
    """
    path = results_dir(directory) / f"{row['dataset']}.jsonl"
    return _append_line(path, row, None if replace else row.get("config_hash"))


class StoredOutside(BaseModel):
    """What the leaderboard and the audit read of a stored outside evaluation (`robustbench_snn.outside`)."""

    model_config = ConfigDict(extra="allow")

    model: str
    dataset: str
    protocol: str
    attack: str = Field(max_length=1000)
    members: list[dict]
    submitted_by: str = Field(max_length=1000)
    n_examples: int = Field(ge=1)
    survivors: int = Field(ge=0)
    broken: list[int]
    robust_accuracy_row: float = Field(ge=0, le=1)
    robust_accuracy: float = Field(ge=0, le=1)
    row_timestamp: str
    timestamp: str


class SideStore:
    """One kind of result kept beside the rows: a JSON-lines file per dataset in a folder of the
    results store, appended under the lock like the rows, read from `reading_dir` through its
    schema (a line that is not one is skipped with a warning)."""

    def __init__(self, folder: str, schema: type[BaseModel]) -> None:
        self.folder, self.schema = folder, schema

    def path(self, dataset: str, directory: str | os.PathLike | None = None) -> Path:
        """Where the results of ``dataset`` are stored in the results folder ``directory``."""
        return results_dir(directory) / self.folder / f"{dataset}.jsonl"

    def append(self, row: dict, directory: str | os.PathLike | None = None) -> Path:
        """Append one result to ``<folder>/<dataset>.jsonl``."""
        return _append_line(self.path(row["dataset"], directory), row)

    def load(self, dataset: str, directory: str | os.PathLike | None = None) -> list[dict]:
        """The stored results of a dataset, oldest first."""
        return _read_jsonl(reading_dir(directory) / self.folder / f"{dataset}.jsonl", self.schema)


# The audits (`robustbench_snn.audit`) and the outside evaluations (`robustbench_snn.outside`).
AUDITS = SideStore("audits", StoredAudit)
OUTSIDE = SideStore("outside", StoredOutside)
audits_path, append_audit, load_audits = AUDITS.path, AUDITS.append, AUDITS.load
outside_path, append_outside, load_outside = OUTSIDE.path, OUTSIDE.append, OUTSIDE.load


def ensure_writable(directory: Path) -> Path:
    """``directory``, or a `UserError` if it could not be written to: checked before any work is
    done (and without creating anything), so a long run never ends unable to store its result."""
    existing = directory.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to {directory}: {existing} is not a writable folder")
    return directory


def find_row(dataset: str, hash_: str, directory: str | os.PathLike | None = None) -> dict | None:
    """The newest stored row of a configuration, if any."""
    matches = [row for row in _read_jsonl(results_dir(directory) / f"{dataset}.jsonl", StoredRow) if row.get("config_hash") == hash_]
    return matches[-1] if matches else None


def store_label(folder: Path) -> str:
    """``official`` for the official store, ``yours`` for any other folder of rows."""
    return "official" if folder.resolve() == OFFICIAL_RESULTS_DIR.resolve() else "yours"


def reading_stores(override: str | os.PathLike | None = None, with_user_store: bool = False) -> list[Path]:
    """The folders rows are read from: `reading_dir`, and with ``with_user_store`` (and no
    ``override``) also the folder a user's own runs are stored in, when it exists."""
    first = reading_dir(override)
    stores = [first]
    mine = results_dir()
    if override is None and with_user_store and mine.is_dir() and mine.resolve() != first.resolve():
        stores.append(mine)
    return stores


def load_rows(dataset: str | None = None, directory: str | os.PathLike | None = None, with_user_store: bool = False) -> pd.DataFrame:
    """All stored rows (optionally of one dataset) as a tidy table, from `reading_stores`, each
    with the ``store`` it came from (`store_label`)."""
    rows = []
    for root in reading_stores(directory, with_user_store):
        paths = [root / f"{dataset}.jsonl"] if dataset else sorted(root.glob("*.jsonl"))
        rows += [{**row, "store": store_label(root)} for path in paths for row in _read_jsonl(path, StoredRow)]
    return pd.DataFrame(rows)


def save_samples(frame: pd.DataFrame, hash_: str, directory: str | os.PathLike | None = None) -> Path:
    """Per-sample outcomes of a run, as CSV beside the rows."""
    path = results_dir(directory) / "samples" / f"{hash_}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as partial:
        frame.to_csv(partial, index=False)
    return path


class PartialRun:
    """The finished batches of an unfinished run, kept so that a rerun resumes after the last one."""

    def __init__(self, hash_: str, directory: str | os.PathLike | None = None) -> None:
        self.path = results_dir(directory) / ".partial" / f"{hash_}.jsonl"

    def finished_batches(self) -> dict[int, dict]:
        return {entry["batch"]: entry for entry in _read_jsonl(self.path)}

    def record(self, batch: dict) -> None:
        with _locked(self.path, "a") as handle:
            handle.write(json.dumps(batch) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
