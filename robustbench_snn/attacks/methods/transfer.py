"""Transfer: PGD examples crafted on a source model (another registered model, the ANN twin, or the
target's own weights fed its coding's expectation) and tried on the target."""

from __future__ import annotations

from robustbench_snn.attack_fields import DEFAULT_GRADIENT_MODE
from robustbench_snn.attacks.attack import EXPECTATION_SOURCE, Attack, register_attack, schedule_label
from robustbench_snn.attacks.methods.pgd import pgd

__all__ = ["EXPECTATION_SOURCE", "Transfer"]


@register_attack
class Transfer(Attack):
    name = "transfer"
    description = "PGD on a source model (a registered name, twin, or expectation), tried on the target"
    white_box = False
    loss_choice = True
    tunable = False
    needs_source = True
    schedules_steps = True

    def check(self, spec):
        super().check(spec)
        if spec.source is None:
            raise ValueError("a transfer attack needs a source model (a registered name, 'twin' or 'expectation')")

    def label(self, spec):
        loss = ("" if spec.loss == "ce" else f"-{spec.loss}") + schedule_label(spec)
        backward = spec.backward_label()
        mode = "" if backward in (DEFAULT_GRADIENT_MODE, "") else f"[{backward}]"
        restarts = f"x{spec.restarts}" if spec.restarts > 1 else ""
        return f"transfer{restarts}{loss}{mode}<-{spec.source}"

    def perturb(self, model, spec, images, labels, seed, draws):
        return pgd(model, spec, images, labels, seed, draws)
