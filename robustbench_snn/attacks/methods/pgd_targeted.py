"""Targeted PGD: the CW margin toward one wrong class per restart, the r-th most likely at the clean
input in restart r (the targets AutoAttack's APGD-T chooses), and a sample fooled by any wrong class.

Issue 40's third red team broke survivors of `reliable` v11 that no untargeted margin reached: the
largest wrong logit pulls every step toward one class, and another class was the nearer boundary.
"""

from __future__ import annotations

from robustbench_snn.attacks.attack import Attack, register_attack
from robustbench_snn.attacks.methods.pgd import pgd


@register_attack
class TargetedPGD(Attack):
    name = "pgd-targeted"
    description = "PGD on the CW margin toward the r-th most likely wrong class in restart r (targets as in APGD-T)"
    schedules_steps = True

    def perturb(self, model, spec, images, labels, seed, draws):
        return pgd(model, spec.model_copy(update={"loss": "cw"}), images, labels, seed, draws, targeted=True)
