"""Run: the plan's members over its batches, resuming finished ones, with progress.

Each batch is seeded by its index (`seeds.batch_seed`), so a batch's outcome is the same
whichever run, resumed run or process computes it. Outcomes are plain dicts, as stored in the
partial-run file and gathered across processes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from robustbench_snn import energy
from robustbench_snn import results as store
from robustbench_snn.attacks import attack_batch
from robustbench_snn.evaluation.plan import Plan
from robustbench_snn.progress import RunProgress
from robustbench_snn.seeds import batch_seed, energy_seed

logger = logging.getLogger(__name__)


def run_batch(plan: Plan, index: int, on_member=None) -> dict:
    """Batch ``index``'s outcome: per-sample clean, robust and fooling member, its counters, and the
    energy counts of its clean and (with an attack) its final adversarial inputs."""
    images, labels = plan.batch(index)
    started = time.perf_counter()
    seed = batch_seed(plan.seed, index)
    attacked = attack_batch(plan.model, plan.protocol, plan.members, images, labels, seed, plan.sources, on_member=on_member)
    outcome = attacked.as_dict()
    if plan.smoothed:
        outcome["certified_radius"] = [sample.radius if sample.correct else 0.0 for sample in plan.model.certify(images, labels)]
    # Counted last, from a seed of their own: no other number of the batch depends on these draws.
    outcome["energy"] = {
        "clean": energy.measure(plan.model, images, plan.protocol.eval_draws, energy_seed(seed)),
        "adversarial": energy.measure(plan.model, attacked.final, plan.protocol.eval_draws, energy_seed(seed)) if plan.members else None,
    }
    outcome["labels"] = labels.tolist()
    outcome["seconds"] = time.perf_counter() - started
    return outcome


@dataclass
class BatchOutcomes:
    """The outcomes of a run's batches by index, and the seconds spent on those resumed from an earlier run."""

    outcomes: dict[int, dict]
    resumed_seconds: float = 0.0

    def in_order(self) -> list[dict]:
        return [self.outcomes[index] for index in sorted(self.outcomes)]


def run_batches(plan: Plan, partial: store.PartialRun | None, progress: bool, indices: Iterable[int] | None = None) -> BatchOutcomes:
    """The outcome of every batch in ``indices`` (default: all). Batches already in ``partial`` are
    read back, new ones are added to it as they finish."""
    indices = list(range(plan.batches) if indices is None else indices)
    finished = partial.finished_batches() if partial is not None else {}
    done_before = sum(index in finished for index in indices)
    if done_before:
        logger.warning("resuming an interrupted run: %d of %d batch(es) already finished (%s)", done_before, len(indices), partial.path)
    outcomes: dict[int, dict] = {}
    size = sum(plan.batch_length(index) for index in indices)
    with RunProgress(plan.protocol.name, size, len(plan.members) + 1, progress) as bar:
        for position, index in enumerate(indices):
            count = plan.batch_length(index)
            outcome, seconds = finished.get(index), None
            if outcome is None:
                outcome = run_batch(plan, index, on_member=bar.within(count))
                seconds = outcome["seconds"]
                if partial is not None:
                    partial.record({"batch": index, **outcome})
            outcomes[index] = outcome
            counts = {"clean": sum(sum(part["clean"]) for part in outcomes.values())}
            if plan.members:
                counts["robust"] = sum(sum(part["robust"]) for part in outcomes.values())
            bar.finished(count, counts, seconds, len(indices) - position - 1)
    resumed = sum(finished[index]["seconds"] for index in indices if index in finished)
    return BatchOutcomes(outcomes, resumed)
