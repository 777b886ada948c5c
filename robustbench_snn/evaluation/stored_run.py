"""The life of a stored run, one for every command that stores one (an evaluation, a certificate,
an audit): its results folder checked before any work, the row already stored under its identity,
its batches run sharded over the ranks and resumable from a partial run, and its finished row
appended (by rank 0) with the partial run discarded."""

from __future__ import annotations

import time
from collections.abc import Callable

from robustbench_snn import store
from robustbench_snn.engine import BatchOutcomes, Work
from robustbench_snn.evaluation.distributed import Ranks


class StoredRun:
    """One run of identity ``identity`` over ``ranks``, kept in ``results_dir`` when ``keep``."""

    def __init__(self, identity: str, ranks: Ranks, *, keep: bool, results_dir: str | None) -> None:
        self.identity, self.ranks, self.keep, self.results_dir = identity, ranks, keep, results_dir
        if keep:
            store.ensure_writable(store.results_dir(results_dir))
        self.partial = store.PartialRun(identity, results_dir) if keep else None

    def stored_row(self, dataset: str) -> dict | None:
        """The row stored under this identity in ``dataset``'s results, if any."""
        return store.find_row(dataset, self.identity, self.results_dir)

    def run(self, work: Work, progress: bool) -> tuple[BatchOutcomes | None, float, float]:
        """Every batch of ``work``, gathered on rank 0 (None on the others); the run's seconds (those
        of batches resumed from an earlier run included) and the seconds the gathering took."""
        started = time.perf_counter()
        batches, gather_seconds = self.ranks.run(work, self.partial, progress)
        resumed = batches.resumed_seconds if batches is not None else 0.0
        return batches, time.perf_counter() - started + resumed, gather_seconds

    def finish(self, append: Callable[[], object]) -> None:
        """On rank 0 of a kept run: store the finished row (``append()``) and discard the partial run."""
        if self.keep and self.ranks.is_main:
            append()
            self.partial.discard()
