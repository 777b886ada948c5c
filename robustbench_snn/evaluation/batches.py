"""An evaluation's batch: the plan's members on one batch of images, as the engine runs it.

Each batch is seeded by its index (`seeds.batch_seed`), so a batch's outcome is the same
whichever run, resumed run or process computes it. Outcomes are plain dicts, as stored in the
partial-run file and gathered across processes (`engine`).
"""

from __future__ import annotations

import functools
import time

from robustbench_snn import energy
from robustbench_snn.attacks import attack_batch
from robustbench_snn.engine import Work
from robustbench_snn.evaluation.plan import Plan
from robustbench_snn.seeds import batch_seed, energy_seed


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
    return Work(plan.protocol.name, lengths, len(plan.members) + 1, functools.partial(run_batch, plan), counts)
