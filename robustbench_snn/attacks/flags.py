"""Reliability flags: symptoms that a robust accuracy may be too high because the attack was weak.

- ``stochastic_without_eot``: a stochastic model attacked with gradients from a single draw.
- ``zero_gradients``: for every gradient mode of the protocol, at least ZERO_GRADIENT_SHARE of
  the correctly classified samples have an all-zero or non-finite input gradient.
- ``non_monotone_eps``: robust accuracy rises with eps (eps/2, eps, 2 eps).
- ``non_monotone_steps``: robust accuracy rises with 4x the attack steps.
- ``blackbox_stronger``: Square or transfer fools samples that every white-box attack missed.
- ``unbounded_not_zero``: with eps covering the whole input range, samples stay robust.
- ``below_certified``: a smoothed classifier is fooled on samples that its randomized-smoothing
  certificate covers (certified radius at least the attack's ball), so the certificate or the
  attack's evaluation is wrong.

The last four need extra attacks; they run on up to CHECK_EXAMPLES correctly classified
samples when asked for (``--checks``) and always in the ``reliable`` protocol. Differences
count only beyond twice their binomial standard error (at least one sample).
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from robustbench_snn.attacks.protocol import AttackSpec, Protocol
from robustbench_snn.attacks.runner import decide, eot_draws, is_stochastic, perturb, robust_fraction

logger = logging.getLogger(__name__)

FLAGS = (
    "stochastic_without_eot", "zero_gradients", "non_monotone_eps", "non_monotone_steps",
    "blackbox_stronger", "unbounded_not_zero", "below_certified",
)
ZERO_GRADIENT_SHARE = 0.01
CHECK_EXAMPLES = 200
STEP_FACTOR = 4
BLACKBOX_QUERIES = 1000


def slack(fraction: float, n: int) -> float:
    """Twice the binomial standard error at ``fraction`` (at least one sample in ``n``)."""
    return max(2 * math.sqrt(max(fraction * (1 - fraction), 0.0) / n), 1.0 / n)


def significant_count(n: int) -> int:
    """The number of samples a check must exceed to count: 1% of ``n``, and at least one."""
    return max(1, math.floor(0.01 * n))


def stochastic_without_eot(model: nn.Module, members: list[AttackSpec]) -> bool:
    return is_stochastic(model) and any(
        member.uses_gradients and member.attack != "autoattack-rand" and eot_draws(model, member) == 1
        for member in members
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


def reference_member(members: list[AttackSpec]) -> AttackSpec:
    """The white-box member the checks vary (the first one), or PGD-10 with the protocol's budget."""
    for member in members:
        if member.white_box and member.attack not in ("autoattack", "autoattack-rand"):
            return member
    first = members[0]
    return AttackSpec(attack="pgd", norm=first.norm, eps=first.eps, eot=first.eot, steps=10)


def unbounded_eps(spec: AttackSpec, images: torch.Tensor) -> float:
    """An eps that covers the whole [0, 1] input range in ``spec``'s norm."""
    return 1.0 if spec.norm == "Linf" else math.sqrt(images[0].numel())


def run_checks(
    model: nn.Module,
    protocol: Protocol,
    members: list[AttackSpec],
    images: torch.Tensor,
    labels: torch.Tensor,
    seed: int,
    sources: dict[str, nn.Module],
    blackbox_kills: int | None,
    first_member_robust: torch.Tensor,
) -> tuple[list[str], dict]:
    """The attack-based flags on ``images`` (clean-correct samples) and the numbers behind them.

    ``members`` are the members that ran, in order; ``first_member_robust`` says which of
    ``images`` the first one failed on (it ran on all of them), which is reused when the first
    member is the checks' reference instead of attacking again. ``blackbox_kills`` is how many
    samples the protocol's own black-box members fooled after every white-box member failed, or
    None when it has no black-box member (then Square, and transfer when a source is available,
    are run here on the white-box survivors).
    """
    n = len(images)
    reference = reference_member(members)
    draws = protocol.eval_draws

    def fraction(spec: AttackSpec, offset: int) -> float:
        return robust_fraction(model, spec, images, labels, draws, seed + offset, sources)

    reference_robust = first_member_robust if reference is members[0] else None
    at_eps = fraction(reference, 1) if reference_robust is None else reference_robust.float().mean().item()
    half = fraction(reference.model_copy(update={"eps": reference.eps / 2}), 2)
    double = fraction(reference.model_copy(update={"eps": min(2 * reference.eps, unbounded_eps(reference, images))}), 3)
    more_steps = reference.model_copy(
        update={"attack": "pgd", "steps": max(reference.steps, 10) * STEP_FACTOR} if reference.attack == "fgsm"
        else {"steps": reference.steps * STEP_FACTOR}
    )
    longer = fraction(more_steps, 4)
    unbounded = fraction(reference.model_copy(update={"eps": unbounded_eps(reference, images)}), 5)
    details = {
        "check_examples": n,
        "reference_attack": reference.label(),
        "robust_at_half_eps": half,
        "robust_at_eps": at_eps,
        "robust_at_double_eps": double,
        f"robust_with_{STEP_FACTOR}x_steps": longer,
        "robust_at_unbounded_eps": unbounded,
    }
    flags = []
    if half + slack(at_eps, n) < at_eps or at_eps + slack(double, n) < double:
        flags.append("non_monotone_eps")
    if longer > at_eps + slack(longer, n):
        flags.append("non_monotone_steps")
    if unbounded * n > significant_count(n):
        flags.append("unbounded_not_zero")

    if blackbox_kills is None:
        blackbox_kills = _blackbox_on_survivors(
            model, protocol, reference, images, labels, seed, sources, details, reference_robust
        )
        details["blackbox_kills_on_white_box_survivors"] = blackbox_kills
    if blackbox_kills > significant_count(n):
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
    reference_robust: torch.Tensor | None,
) -> int:
    """Samples that Square (and transfer, if a source exists) fool among the reference's survivors."""
    survivors = reference_robust
    if survivors is None:
        if is_stochastic(model):
            model.encoder.seed(seed + 6)
        survivors = decide(model, perturb(model, reference, images, labels, seed + 6, sources), labels, protocol.eval_draws)
    index = survivors.nonzero().squeeze(1)
    blackbox = [reference.model_copy(update={"attack": "square", "queries": BLACKBOX_QUERIES})]
    blackbox += [reference.model_copy(update={"attack": "transfer", "source": name}) for name in sources]
    kills = 0
    for offset, spec in enumerate(blackbox, 7):
        if index.numel() == 0:
            break
        alive = decide(model, perturb(model, spec, images[index], labels[index], seed + offset, sources), labels[index], protocol.eval_draws)
        kills += int((~alive).sum())
        index = index[alive]
    details["blackbox_attacks"] = [spec.label() for spec in blackbox]
    return kills
