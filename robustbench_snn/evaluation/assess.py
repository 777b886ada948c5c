"""Assess: the reliability flags of a finished run, from its outcomes and the attack-based checks.

The checks attack the first `CHECK_EXAMPLES` correctly classified images again (re-read from the
plan's test images in order), so they need only the batches' outcomes, wherever those ran.
"""

from __future__ import annotations

import torch

from robustbench_snn.attacks import FLAGS, run_checks
from robustbench_snn.attacks.flags import (
    CHECK_EXAMPLES,
    below_certified,
    convergence_curves,
    significant_count,
    stochastic_without_eot,
    zero_gradients,
)
from robustbench_snn.evaluation.batches import BatchResult
from robustbench_snn.evaluation.plan import Plan
from robustbench_snn.models.interface import is_stochastic
from robustbench_snn.norms import covering_radius
from robustbench_snn.progress import CheckProgress


def summed(counters: list[dict[str, float]]) -> dict[str, float]:
    """Per-key sums of the batches' counters."""
    total: dict[str, float] = {}
    for counter in counters:
        for key, value in counter.items():
            total[key] = total.get(key, 0) + value
    return total


def check_sample(plan: Plan, outcomes: list[BatchResult]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first `CHECK_EXAMPLES` correctly classified images, their labels, and which of them stayed robust."""
    images, labels, robust = [], [], []
    for index, outcome in enumerate(outcomes):
        if sum(len(part) for part in labels) >= CHECK_EXAMPLES:
            break
        correct = torch.tensor(outcome.clean, dtype=torch.bool)
        batch_images, batch_labels = plan.batch(index)
        images.append(batch_images[correct.to(plan.device)])
        labels.append(batch_labels[correct.to(plan.device)])
        robust.append(torch.tensor(outcome.robust, dtype=torch.bool)[correct])
    return (torch.cat(images)[:CHECK_EXAMPLES], torch.cat(labels)[:CHECK_EXAMPLES], torch.cat(robust)[:CHECK_EXAMPLES].to(plan.device))


def assess(plan: Plan, outcomes: list[BatchResult], progress: bool) -> tuple[list[str], dict]:
    """The run's flags (in `FLAGS` order) and the numbers behind them; ``outcomes`` in batch order."""
    model, members = plan.model, plan.members
    clean = [flag for part in outcomes for flag in part.clean]
    robust = [flag for part in outcomes for flag in part.robust]
    fooled_by = [who for part in outcomes for who in part.fooled_by]
    flags, details = [], {}
    if stochastic_without_eot(model, members):
        flags.append("stochastic_without_eot")
    masked, shares = zero_gradients(summed([part.zero_gradients for part in outcomes]), sum(clean))
    details["zero_gradient_share"] = shares
    if masked:
        flags.append("zero_gradients")
    if plan.saturated and members:
        flags.append("saturated_logits")
    if plan.protocol.convergence is not None and members:
        converged, details["convergence"] = convergence_curves([part.convergence for part in outcomes])
        if not converged:
            flags.append("not_converged")
    if plan.protocol.checks and members:
        blackbox = [member.label() for member in members if not member.white_box]
        if blackbox:
            details["blackbox_kills"] = sum(fooled_by.count(label) for label in blackbox)
            if details["blackbox_kills"] > significant_count(sum(clean)):
                flags.append("blackbox_stronger")
        with CheckProgress(4 + is_stochastic(model) + (0 if blackbox else 1 + len(plan.sources)), progress) as checks:
            check_flags, check_details = run_checks(
                model,
                plan.protocol,
                members,
                *check_sample(plan, outcomes),
                plan.seed,
                plan.sources,
                blackbox=not blackbox,
                on_check=checks,
            )
        flags += check_flags
        details.update(check_details)
    if plan.smoothed and members:
        needed = covering_radius(members[0].norm, members[0].eps, model.certificate.norm, plan.examples[0][0].numel())
        violated, smoothing_details = below_certified(
            clean, robust, [radius for part in outcomes for radius in part.certified_radius], needed
        )
        details.update(smoothing_details)
        if violated:
            flags.append("below_certified")
    if plan.skipped and members:
        flags.append("reduced_protocol")
    return [flag for flag in FLAGS if flag in flags], details
