"""The engine: planned work over batches of test images (an evaluation, an audit, a certificate),
run resumably, sharded over torchrun ranks, with one progress bar.

A `Work` names its batches and how to run one. Each batch's outcome is a plain dict that depends
only on the batch's index (its seed comes from it), so it is the same whichever run, resumed run
or rank computes it: finished batches go to a partial-run file as they finish, a rerun after a
kill reads them back, and each rank runs every ``world``-th batch while rank 0 gathers them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from robustbench_snn import store
from robustbench_snn.progress import RunProgress

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageBatches:
    """The first test images in batches of ``batch_size``, in the split's order, on ``device``."""

    examples: Dataset
    batch_size: int
    device: torch.device | str = "cpu"

    @property
    def count(self) -> int:
        return -(-len(self.examples) // self.batch_size)

    def length(self, index: int) -> int:
        """How many images batch ``index`` holds (the last may be short)."""
        return min(self.batch_size, len(self.examples) - index * self.batch_size)

    def lengths(self) -> list[int]:
        return [self.length(index) for index in range(self.count)]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``index``'s images and labels, on the device."""
        start = index * self.batch_size
        pairs = [self.examples[position] for position in range(start, start + self.length(index))]
        images = torch.stack([image for image, _ in pairs]).to(self.device)
        labels = torch.tensor([int(label) for _, label in pairs]).to(self.device)
        return images, labels


@dataclass
class Work:
    """What the engine runs: ``run_batch(index, on_part)`` gives batch ``index``'s outcome (a dict
    with its ``seconds``) and calls ``on_part(k)`` as its ``parts`` steps finish; ``counts`` sums
    the outcomes so far for the progress bar."""

    label: str
    lengths: list[int]
    parts: int
    run_batch: Callable[[int, Callable[[int], None]], dict]
    counts: Callable[[list[dict]], dict[str, int]]

    @property
    def batches(self) -> int:
        return len(self.lengths)


@dataclass
class BatchOutcomes:
    """The outcomes of a run's batches by index, and the seconds spent on those resumed from an earlier run."""

    outcomes: dict[int, dict]
    resumed_seconds: float = 0.0

    def in_order(self) -> list[dict]:
        return [self.outcomes[index] for index in sorted(self.outcomes)]


def run_batches(work: Work, partial: store.PartialRun | None, progress: bool, indices: Iterable[int] | None = None) -> BatchOutcomes:
    """The outcome of every batch in ``indices`` (default: all). Batches already in ``partial`` are
    read back, new ones are added to it as they finish."""
    indices = list(range(work.batches) if indices is None else indices)
    finished = partial.finished_batches() if partial is not None else {}
    done_before = sum(index in finished for index in indices)
    if done_before:
        logger.warning("resuming an interrupted run: %d of %d batch(es) already finished (%s)", done_before, len(indices), partial.path)
    outcomes: dict[int, dict] = {}
    with RunProgress(work.label, sum(work.lengths[index] for index in indices), work.parts, progress) as bar:
        for position, index in enumerate(indices):
            count = work.lengths[index]
            outcome, seconds = finished.get(index), None
            if outcome is None:
                outcome = work.run_batch(index, bar.within(count))
                seconds = outcome["seconds"]
                if partial is not None:
                    partial.record({"batch": index, **outcome})
            outcomes[index] = outcome
            bar.finished(count, work.counts(list(outcomes.values())), seconds, len(indices) - position - 1)
    resumed = sum(finished[index]["seconds"] for index in indices if index in finished)
    return BatchOutcomes(outcomes, resumed)
