"""The life of a stored run, one for every command that stores one (an evaluation, a certificate,
an audit): the row already stored under its identity, its results folder checked before any work,
its batches run sharded over the ranks and resumable from a partial run, and its finished row
appended (by rank 0) with the partial run discarded."""

from __future__ import annotations

import time
from collections.abc import Callable

from robustbench_snn import store
from robustbench_snn.engine import BatchOutcomes, Work
from robustbench_snn.evaluation.distributed import Ranks


class StoredRun:
    """The runs over ``ranks`` kept in ``results_dir`` when ``keep``."""

    def __init__(self, ranks: Ranks, *, keep: bool, results_dir: str | None) -> None:
        self.ranks, self.keep, self.results_dir = ranks, keep, results_dir
        self.partial: store.PartialRun | None = None

    def check_folder(self) -> None:
        """Refuse a kept run whose results folder cannot be written, before any costly work (a stored
        row may still be read from a folder that cannot be written: look for it first)."""
        if self.keep:
            store.ensure_writable(store.results_dir(self.results_dir))

    def stored_row(self, dataset: str, identity: str) -> dict | None:
        """The row stored under ``identity`` in ``dataset``'s results, if any."""
        return store.find_row(dataset, identity, self.results_dir)

    def run(self, identity: str, work: Work, progress: bool) -> tuple[BatchOutcomes | None, float, float]:
        """Every batch of ``work`` (resumed from the partial run of ``identity`` when kept), gathered on
        rank 0 (None on the others); the run's seconds (those of batches resumed from an earlier run
        included) and the seconds the gathering took."""
        self.partial = store.PartialRun(identity, self.results_dir) if self.keep else None
        started = time.perf_counter()
        batches, gather_seconds = self.ranks.run(work, self.partial, progress)
        resumed = batches.resumed_seconds if batches is not None else 0.0
        return batches, time.perf_counter() - started + resumed, gather_seconds

    def finish(self, append: Callable[[], object]) -> None:
        """On rank 0 of a kept run: store the finished row (``append()``) and discard the partial run."""
        if self.keep and self.ranks.is_main:
            append()
            self.partial.discard()
