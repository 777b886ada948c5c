"""Reliability flags: symptoms that a robust accuracy may be too high because the attack was weak.

- ``stochastic_without_eot``: a stochastic model attacked with gradients from a single draw.
- ``zero_gradients``: for every gradient mode of the protocol, at least ZERO_GRADIENT_SHARE of
  the correctly classified samples have an all-zero or non-finite input gradient.
- ``saturated_logits``: on the first images the top-1 logit exceeds the second by more than 80, so
  float32 softmax is one-hot and cross-entropy has no gradient on correct samples: the CE-based
  members find nothing there (the CW and DLR margins are unaffected).
- ``non_monotone_eps``: an attack at eps/2 fools samples that every member failed on at eps.
- ``more_steps_stronger``: the reference attack with 4x the steps fools samples that every
  member failed on (the attacks had not converged).
- ``not_converged``: under the protocol's convergence rule, a cheap member's last doubling of
  restarts still fooled more than the rule's share of a batch's images
  (`attacks.protocol.Convergence`), or the reference attack with twice its restarts or twice its
  EOT draws fools survivors (a check).
- ``blackbox_stronger``: Square or transfer fools samples that every white-box attack missed.
- ``unbounded_not_zero``: with eps covering the whole input range, samples that every member
  failed on stay robust.
- ``reduced_protocol``: members of the protocol could not run on this model (an SNN gradient
  mode the model does not support, a transfer source it has not); the protocol's name says
  ``-reduced`` and the record lists them under ``skipped_members``.
- ``below_certified``: a smoothed classifier is fooled on samples that its randomized-smoothing
  certificate covers (certified radius at least the attack's ball), so the certificate or the
  attack's evaluation is wrong.

The attack-based checks (the eps, steps, restarts, draws, unbounded and, for protocols without black-box
members, black-box ones) run when asked for (``--checks``) and always in the ``reliable``
protocol, on the protocol's survivors among the first CHECK_EXAMPLES correctly classified
samples. Each extra attack stays inside the threat model (or, unbounded, contains it), so every
survivor it fools is a sample the protocol counted robust and should not have: a flag is direct
evidence that the reported robust accuracy is too high, and attacking only the survivors keeps
the checks cheap. A flag needs more samples than 1% of those checked, and at least two, so one
lucky draw of a stochastic model does not raise it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
from torch import nn

from robustbench_snn.attacks.decision import SequentialDecision
from robustbench_snn.attacks.protocol import AttackSpec, Protocol
from robustbench_snn.attacks.runner import attack_samples, eot_draws
from robustbench_snn.models.interface import is_stochastic

logger = logging.getLogger(__name__)

# Every flag a record can carry, in the order records list them, with the meaning shown to users.
FLAGS = {
    "stochastic_without_eot": "a stochastic model was attacked with single-draw gradients (use --eot)",
    "zero_gradients": "many input gradients are zero or not finite (gradient masking?)",
    "saturated_logits": "the logits are so large that cross-entropy's gradient vanishes in float32 (use --loss cw or dlr)",
    "non_monotone_eps": "an attack at eps/2 fooled samples that every attack at eps missed",
    "more_steps_stronger": "4x the attack steps fooled samples that every attack missed (not converged)",
    "not_converged": "twice the restarts or EOT draws of an attack still fooled samples every attack missed (not converged)",
    "blackbox_stronger": "a black-box attack fooled samples the white-box attacks missed",
    "unbounded_not_zero": "samples every attack missed stayed robust with eps covering the whole input range",
    "below_certified": "the smoothed classifier was fooled inside its certified radius (a bug in the attack or the certificate)",
    "reduced_protocol": "members of the protocol could not run on this model (see skipped): a reduced protocol, not the preset",
    # Never raised by a run: the leaderboard adds it to a model whose audit broke it (`robustbench_snn.audit`).
    "audit_stronger": "an attack of `rsc-bench audit`, run alone on the same images, fooled samples the protocol counted robust",
    # Never raised by a run either: the leaderboard adds it while a submitted attack's lower number stands (`robustbench_snn.outside`).
    "outside_stronger": "an attack submitted from outside (`rsc-bench submit attack`) fooled samples the protocol counted robust",
}
# Each flag's badge on the leaderboard: a few words; its meaning above shows on hover and click.
BADGES = {
    "stochastic_without_eot": "no EOT",
    "zero_gradients": "zero gradients",
    "saturated_logits": "saturated logits",
    "non_monotone_eps": "non-monotone eps",
    "more_steps_stronger": "more steps stronger",
    "not_converged": "not converged",
    "blackbox_stronger": "black-box stronger",
    "unbounded_not_zero": "unbounded not zero",
    "below_certified": "below certificate",
    "reduced_protocol": "reduced protocol",
    "audit_stronger": "audit broke it",
    "outside_stronger": "outside attack",
}
ZERO_GRADIENT_SHARE = 0.01
CHECK_EXAMPLES = 200
STEP_FACTOR = 4
BLACKBOX_QUERIES = 1000


def significant_count(n: int) -> int:
    """The number of samples a check must exceed to count: 1% of ``n``, and at least one."""
    return max(1, math.floor(0.01 * n))


def stochastic_without_eot(model: nn.Module, members: list[AttackSpec]) -> bool:
    return is_stochastic(model) and any(
        member.uses_gradients and not member.method.own_eot and eot_draws(model, member) == 1 for member in members
    )


def zero_gradients(counts: dict[str, int], n_correct: int) -> tuple[bool, dict[str, float]]:
    """Whether every gradient mode saw too many broken gradients, and the share per mode."""
    shares = {mode: count / n_correct for mode, count in counts.items()} if n_correct else {}
    return bool(shares) and min(shares.values()) >= ZERO_GRADIENT_SHARE, shares


def below_certified(clean: list[bool], robust: list[bool], radii: list[float], needed_radius: float) -> tuple[bool, dict]:
    """Whether the attack fooled the smoothed classifier on more certified samples than chance allows.

    ``radii`` are the certified radii (0 where the certificate abstains or is wrong) and
    ``needed_radius`` is the radius whose certified ball holds the attack's ball. A certificate
    fails with probability alpha and the vote at an adversarial input is a finite sample, so a
    violation counts only beyond `significant_count` of the certified samples.
    """
    certified = [radius >= needed_radius for radius in radii]
    violations = sum(cert and correct and not kept for cert, correct, kept in zip(certified, clean, robust))
    n = len(radii)
    details = {
        "certified_accuracy_at_eps": sum(certified) / n if n else 0.0,
        "certified_radius_needed": needed_radius,
        "certified_but_fooled": violations,
    }
    return violations > significant_count(sum(certified)), details


def convergence_curves(batches: list[dict[str, dict]]) -> tuple[bool, dict[str, dict]]:
    """Whether every converging member converged on every batch, and per member the run's curve:
    restarts run and samples still robust after each doubling (a batch that converged earlier
    counts its last value), and the batches that did not converge."""
    curves: dict[str, dict] = {}
    for batch in batches:
        for label, curve in batch.items():
            entry = curves.setdefault(label, {"batches": []})
            entry["batches"].append(curve)
    summary, converged = {}, True
    for label, entry in curves.items():
        longest = max(entry["batches"], key=lambda curve: len(curve["restarts"]))
        levels = len(longest["restarts"])
        unconverged = sum(not curve["converged"] for curve in entry["batches"])
        converged &= unconverged == 0
        summary[label] = {
            "restarts": longest["restarts"],
            "robust": [sum(curve["robust"][min(level, len(curve["robust"]) - 1)] for curve in entry["batches"]) for level in range(levels)],
            "unconverged_batches": unconverged,
        }
    return converged, summary


def reference_member(members: list[AttackSpec]) -> AttackSpec:
    """The white-box member the checks vary (the first one), or PGD-10 with the protocol's budget."""
    for member in members:
        if member.white_box and member.method.tunable:
            return member
    first = members[0]
    return AttackSpec(attack="pgd", norm=first.norm, eps=first.eps, eot=first.eot, steps=10)


def unbounded_eps(spec: AttackSpec, images: torch.Tensor) -> float:
    """An eps that covers the whole [0, 1] input range in ``spec``'s norm."""
    return 1.0 if spec.norm == "Linf" else math.sqrt(images[0].numel())


def fooled(
    model: nn.Module,
    spec: AttackSpec,
    images: torch.Tensor,
    labels: torch.Tensor,
    rule: "int | SequentialDecision",
    seed: int,
    sources: dict[str, nn.Module],
) -> torch.Tensor:
    """Which of ``images`` ``spec`` fools under the decision ``rule`` (`runner.decide`)."""
    if len(images) == 0:
        return torch.zeros(0, dtype=torch.bool)
    return ~attack_samples(model, spec, images, labels, rule, seed, sources)


def run_checks(
    model: nn.Module,
    protocol: Protocol,
    members: list[AttackSpec],
    images: torch.Tensor,
    labels: torch.Tensor,
    robust: torch.Tensor,
    seed: int,
    sources: dict[str, nn.Module],
    blackbox: bool,
    on_check: Callable[[str], None] | None = None,
) -> tuple[list[str], dict]:
    """The attack-based flags and the numbers behind them.

    ``images`` are correctly classified samples and ``robust`` says which of them every member
    failed on; only those are attacked. ``blackbox`` asks for Square (and transfer, when a
    source is available) too, for protocols without black-box members. ``on_check`` is called
    with each check attack's label before it runs.
    """
    announce = on_check or (lambda label: None)
    n = len(images)
    if n == 0:
        logger.warning("no correctly classified samples: the reliability checks did not run")
        return [], {"check_examples": 0}
    reference = reference_member(members)
    survivors, targets = images[robust], labels[robust]

    def count(spec: AttackSpec, offset: int) -> int:
        announce(spec.label())
        return int(fooled(model, spec, survivors, targets, protocol.rule(), seed + offset, sources).sum())

    more_steps = reference.method.with_more_steps(reference, STEP_FACTOR)
    details = {
        "check_examples": n,
        "check_survivors": len(survivors),
        "reference_attack": reference.label(),
        "fooled_at_half_eps": count(reference.model_copy(update={"eps": reference.eps / 2}), 2),
        f"fooled_with_{STEP_FACTOR}x_steps": count(more_steps, 4),
        "robust_at_unbounded_eps": len(survivors) - count(reference.model_copy(update={"eps": unbounded_eps(reference, images)}), 5),
        # The budget's other two axes: twice the restarts (fresh starts and draws), twice the EOT draws.
        "fooled_with_2x_restarts": count(reference.model_copy(update={"restarts": 2 * reference.restarts}), 11),
    }
    if is_stochastic(model) and reference.uses_gradients:
        details["fooled_with_2x_draws"] = count(reference.model_copy(update={"eot": 2 * reference.eot}), 12)
    threshold = significant_count(n)
    flags = []
    if details["fooled_at_half_eps"] > threshold:
        flags.append("non_monotone_eps")
    if details[f"fooled_with_{STEP_FACTOR}x_steps"] > threshold:
        flags.append("more_steps_stronger")
    if max(details["fooled_with_2x_restarts"], details.get("fooled_with_2x_draws", 0)) > threshold:
        flags.append("not_converged")
    if details["robust_at_unbounded_eps"] > threshold:
        flags.append("unbounded_not_zero")
    if blackbox:
        details["blackbox_kills_on_survivors"] = _blackbox_on_survivors(
            model, protocol, reference, survivors, targets, seed, sources, details, announce
        )
        if details["blackbox_kills_on_survivors"] > threshold:
            flags.append("blackbox_stronger")
    return flags, details


def _blackbox_on_survivors(
    model: nn.Module,
    protocol: Protocol,
    reference: AttackSpec,
    images: torch.Tensor,
    labels: torch.Tensor,
    seed: int,
    sources: dict[str, nn.Module],
    details: dict,
    announce: Callable[[str], None],
) -> int:
    """How many of ``images`` Square (and then transfer, if a source exists) fool."""
    blackbox = [reference.model_copy(update={"attack": "square", "queries": BLACKBOX_QUERIES})]
    blackbox += [reference.model_copy(update={"attack": "transfer", "source": name}) for name in sources]
    details["blackbox_attacks"] = [spec.label() for spec in blackbox]
    alive = torch.ones(len(images), dtype=torch.bool)
    for offset, spec in enumerate(blackbox, 7):
        announce(spec.label())
        index = alive.nonzero().squeeze(1)
        alive[index[fooled(model, spec, images[index], labels[index], protocol.rule(), seed + offset, sources)]] = False
    return int((~alive).sum())
