"""Result columns: a quantity measured on every batch of an evaluation, declared once.

A `Column` says how it measures one batch (`measure`, from the batch's images, labels, decisions
and final inputs), how the batches combine into the record (`combine`), and how its value reads
in the text table and on the leaderboard (`title`, `cell`). Registered with `register_column`, or
from an installed package through the entry-point group ``robustbench_snn.columns``, it reaches
the record (``record.columns[name]``, so `rsc-bench results --json`), the results table and the
leaderboard with nothing else edited. Its ``version`` is part of every result's identity, so a
stored row is never reused for a run that would add or change a column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from robustbench_snn.plugins import Registry

if TYPE_CHECKING:  # the tables and the leaderboard read columns without torch
    import torch
    from torch import nn


@dataclass(frozen=True)
class BatchContext:
    """What a column sees of one finished batch, per sample in the batch's order."""

    model: nn.Module
    images: torch.Tensor
    labels: torch.Tensor
    clean: list[bool]
    robust: list[bool]
    # the protocol's final inputs (the one that fooled each sample, else the last attempt); the
    # clean images when nothing attacked
    final: torch.Tensor
    # the batch's seed: a column that samples draws from a generator of its own seeded by it
    seed: int


class Column:
    """One measured quantity. Subclasses set ``name`` and ``title`` and implement `measure` and `combine`."""

    name: str = ""
    title: str = ""
    description: str = ""
    # Bumped by any change that alters a number this column makes (part of a result's identity).
    version: int = 1

    def measure(self, batch: BatchContext) -> Any:
        """The batch's value, as JSON (it is kept in the partial-run file and gathered across ranks)."""
        raise NotImplementedError

    def combine(self, values: list[Any], n_examples: int) -> Any:
        """The record's value from the batches' values, in batch order, over ``n_examples`` images."""
        raise NotImplementedError

    def cell(self, value: Any) -> str:
        """The value as a table and leaderboard cell ("-" where a row has none)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return f"{value:.4g}" if isinstance(value, float) else str(value)


ColumnType = TypeVar("ColumnType", bound=type)

COLUMNS: Registry[Column] = Registry("column", "robustbench_snn.columns")


def register_column(cls: ColumnType) -> ColumnType:
    """Class decorator: make a `Column` subclass part of every evaluation."""
    if not cls.name or not cls.title:
        raise TypeError(f"{cls.__name__} must set name and title")
    if not isinstance(cls.version, int) or isinstance(cls.version, bool) or cls.version < 1:
        raise TypeError(f"{cls.__name__}.version must be a positive integer")
    COLUMNS.register(cls.name, cls(), same=lambda known, new: type(known) is type(new))
    return cls


def column_versions() -> dict[str, int]:
    """The registered columns' versions, by name (part of a result's identity)."""
    return {name: column.version for name, column in COLUMNS.items()}


def measure_columns(batch: BatchContext) -> dict[str, Any]:
    """Every registered column's value on one batch."""
    return {name: column.measure(batch) for name, column in COLUMNS.items()}


def combine_columns(batches: list[dict[str, Any]], n_examples: int) -> dict[str, Any]:
    """The record's columns: each column's batch values combined (a column no batch measured is left out)."""
    found = {}
    for name, column in COLUMNS.items():
        values = [batch[name] for batch in batches if name in batch]
        if len(values) == len(batches):
            found[name] = column.combine(values, n_examples)
    return found
