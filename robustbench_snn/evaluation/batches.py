"""An evaluation's batch: the plan's members on one batch of images, as the engine runs it.

Each batch is seeded by its index (`seeds.batch_seed`), so a batch's outcome is the same
whichever run, resumed run or process computes it. Outcomes are plain dicts, as stored in the
partial-run file and gathered across processes (`engine`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from robustbench_snn import energy
from robustbench_snn.attacks import attack_batch
from robustbench_snn.columns import BatchContext, measure_columns
from robustbench_snn.engine import Work
from robustbench_snn.evaluation.plan import Plan
from robustbench_snn.seeds import batch_seed, energy_seed


@dataclass
class BatchResult:
    """One batch's outcome, per sample in the batch's order; stored as `as_dict` in the
    partial-run file, gathered across ranks, and read back with `from_dict`."""

    labels: list[int]
    clean: list[bool]
    clean_one_draw: list[bool]
    robust: list[bool]
    fooled_by: list[str | None]
    zero_gradients: dict[str, int]
    member_seconds: dict[str, float]
    member_seeds: dict[str, list[int]]
    convergence: dict[str, dict]
    # spikes, SynOps and MACs of the clean and the final adversarial inputs (`energy.measure`)
    energy: dict
    seconds: float
    # per member, its kills that hold when decided again on fresh draws (`attacks.runner.BatchOutcome`)
    kills_holding: dict[str, int] = field(default_factory=dict)
    # a smoothed classifier's certified radius per sample (0 where it is wrong or abstains)
    certified_radius: list[float] | None = None
    # the registered columns' values (`robustbench_snn.columns`)
    columns: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "BatchResult":
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


def run_batch(plan: Plan, index: int, on_member: Callable[[int], None] | None = None) -> BatchResult:
    """Batch ``index``'s outcome: per-sample clean, robust and fooling member, its counters, the
    energy counts of its clean and (with an attack) its final adversarial inputs, and the columns."""
    images, labels = plan.batch(index)
    started = time.perf_counter()
    seed = batch_seed(plan.seed, index)
    attacked = attack_batch(plan.model, plan.protocol, plan.members, images, labels, seed, plan.sources, on_member=on_member)
    radius = None
    if plan.smoothed:
        radius = [sample.radius if sample.correct else 0.0 for sample in plan.model.certify(images, labels)]
    # Counted last, from seeds of their own: no other number of the batch depends on these draws.
    counts = {
        "clean": energy.measure(plan.model, images, plan.protocol.eval_draws, energy_seed(seed)),
        "adversarial": energy.measure(plan.model, attacked.final, plan.protocol.eval_draws, energy_seed(seed)) if plan.members else None,
    }
    context = BatchContext(plan.model, images, labels, attacked.clean, attacked.robust, attacked.final, seed)
    return BatchResult(
        labels=labels.tolist(),
        clean=attacked.clean,
        clean_one_draw=attacked.clean_one_draw,
        robust=attacked.robust,
        fooled_by=attacked.fooled_by,
        zero_gradients=attacked.zero_gradients,
        member_seconds=attacked.member_seconds,
        member_seeds=attacked.member_seeds,
        convergence=attacked.convergence,
        kills_holding=attacked.kills_holding,
        energy=counts,
        certified_radius=radius,
        columns=measure_columns(context),
        seconds=time.perf_counter() - started,
    )


def evaluation_counts(outcomes: list[dict], attacked: bool) -> dict[str, int]:
    """The clean (and, under attack, robust) samples so far, shown on the progress bar."""
    counts = {"clean": sum(sum(part["clean"]) for part in outcomes)}
    if attacked:
        counts["robust"] = sum(sum(part["robust"]) for part in outcomes)
    return counts


def evaluation_work(plan: Plan) -> Work:
    """The plan as the engine's work: each batch's clean decision and each member a step."""
    lengths = plan.images.lengths()
    counts = functools.partial(evaluation_counts, attacked=bool(plan.members))
    return Work(
        plan.protocol.name, lengths, len(plan.members) + 1, lambda index, on_part: run_batch(plan, index, on_part).as_dict(), counts
    )
