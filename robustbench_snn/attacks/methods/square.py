"""The Square attack (Andriushchenko et al. 2020): black-box, score-based, from pyautoattack."""

from __future__ import annotations

import torch
from pyautoattack.square import SquareAttack

from robustbench_snn.attacks.attack import Attack, register_attack
from robustbench_snn.attacks.primitives import ExpectedLogits


@register_attack
class Square(Attack):
    name = "square"
    description = "random square-shaped search on the scores, no gradients (black-box)"
    white_box = False
    uses_gradients = False
    query_based = True

    def label(self, spec):
        return f"square-{spec.queries}"

    def perturb(self, model, spec, images, labels, seed, draws):
        # Queries read the logits averaged over ``draws`` encoder draws.
        attack = SquareAttack(
            ExpectedLogits(model, draws), norm=spec.norm, n_queries=spec.queries, eps=spec.eps, seed=seed, device=images.device
        )
        with torch.no_grad():
            return attack.perturb(images, labels).detach()
