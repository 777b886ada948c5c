"""APGD with the cross-entropy or the DLR loss (Croce and Hein 2020), from pyautoattack."""

from __future__ import annotations

from pyautoattack.autopgd_base import APGDAttack

from robustbench_snn.attacks.attack import Attack, register_attack


class _APGD(Attack):
    loss = ""

    def perturb(self, model, spec, images, labels, seed, draws):
        # pyautoattack's EOT averages ``draws`` gradients per step.
        attack = APGDAttack(
            model,
            n_iter=spec.steps,
            norm=spec.norm,
            n_restarts=spec.restarts,
            eps=spec.eps,
            seed=seed,
            loss=self.loss,
            eot_iter=draws,
            device=images.device,
        )
        return attack.perturb(images, labels).detach()


@register_attack
class APGDCrossEntropy(_APGD):
    name = "apgd-ce"
    description = "auto-PGD on the cross-entropy loss (pyautoattack)"
    loss = "ce"


@register_attack
class APGDDLR(_APGD):
    name = "apgd-dlr"
    description = "auto-PGD on the DLR margin loss (pyautoattack)"
    loss = "dlr"
