"""Transfer: PGD examples crafted on a source model (another registered model, the ANN twin, or the
target's own weights fed its coding's expectation) and tried on the target."""

from __future__ import annotations

from robustbench_snn.attacks.methods.pgd import pgd
from robustbench_snn.attacks.registry import Attack, register_attack

# The source that is the target itself fed its coding's expectation (white-box: it uses the
# target's own weights), as against another model's (black-box for the target).
EXPECTATION_SOURCE = "expectation"


@register_attack
class Transfer(Attack):
    name = "transfer"
    description = "PGD on a source model (a registered name, twin, or expectation), tried on the target"
    white_box = False
    loss_choice = True
    tunable = False
    needs_source = True

    def check(self, spec):
        super().check(spec)
        if spec.source is None:
            raise ValueError("a transfer attack needs a source model (a registered name, 'twin' or 'expectation')")

    def is_white_box(self, spec):
        return spec.source == EXPECTATION_SOURCE

    def label(self, spec):
        loss = "" if spec.loss == "ce" else f"-{spec.loss}"
        gradient, bpda = spec.gradient().label(), "+bpda" if spec.bpda else ""
        mode = "" if gradient == "bptt" and not bpda else f"[{gradient}{bpda}]"
        return f"transfer{loss}{mode}<-{spec.source}"

    def attacked_model(self, model, spec, sources):
        return sources[spec.source]

    def perturb(self, model, spec, images, labels, seed, draws):
        return pgd(model, spec, images, labels, seed, draws)
