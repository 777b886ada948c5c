"""The attack registry: every attack declares itself here, and everything else asks it.

An attack is a subclass of `Attack` decorated with `register_attack`: its name, whether it uses
the target's weights (white-box) and gradients, whether our loss choice applies, how its label
reads and how it perturbs a batch. The built-in attacks live one family per module in
`robustbench_snn.attacks.methods` and are imported the first time the registry is asked; a
user's attack registers itself the same way when its module is imported, and an installed
package's attacks through the entry-point group ``robustbench_snn.attacks`` (`plugins`). Adding
an attack is one new module, nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, TypeVar

from robustbench_snn.errors import UserError, did_you_mean
from robustbench_snn.plugins import Registry

if TYPE_CHECKING:
    import torch
    from torch import nn

    from robustbench_snn.attacks.protocol import AttackSpec

# The source that is the target itself fed its coding's expectation (white-box: it uses the
# target's own weights), as against another model's (black-box for the target).
EXPECTATION_SOURCE = "expectation"


def schedule_label(spec: AttackSpec) -> str:
    """The step schedule's part of a member's label: nothing while constant, so no label changes."""
    return "" if spec.step_schedule == "constant" else f"-{spec.step_schedule}"


class Attack:
    """One attack. Subclasses set the class attributes and implement `perturb`.

    ``perturb(model, spec, images, labels, seed, draws)`` returns adversarial images for
    ``images`` in [0, 1] inside ``spec``'s eps-ball; the runner has already set ``spec``'s SNN
    gradient mode (and BPDA) on ``model`` and chosen ``draws``, the EOT draws per gradient. An attack
    that sets ``warm_starts`` also takes ``starts``: for each sample, the input with the largest CW
    margin on the target that any attempt before it reached (the clean input where none ran).
    """

    name: str = ""
    description: str = ""
    # Bumped by any change that alters a number this attack makes (part of a result's identity).
    version: int = 1
    # Uses the attacked model's weights (black-box attacks query it or use another model).
    white_box: bool = True
    uses_gradients: bool = True
    # The member's ``loss`` (ce, cw, dlr) applies; attacks that fix their own loss say False.
    loss_choice: bool = False
    # Counted in the label (``pgd-10``); one-shot attacks and fixed suites leave it out.
    shows_steps: bool = True
    # The reliability checks may vary its eps and steps on the target (see `attacks.flags`).
    tunable: bool = True
    # Fixes its own EOT draws, so a stochastic model is never attacked without EOT by it.
    own_eot: bool = False
    # Crafted on a source model named by the member's ``source`` (loaded by the evaluation); any
    # gradient attack may take a source, a transfer attack must.
    needs_source: bool = False
    # Follows the member's ``step_schedule`` (attacks whose step is their own, as APGD's, say False).
    schedules_steps: bool = False
    # Costly query-based attacks run last, on the samples every other member failed on.
    query_based: bool = False
    # Takes ``starts`` in `perturb`: it refines where the members before it stopped (issue 40's
    # fourth red team searched from surrogate PGD's best point, where gradients had stalled).
    warm_starts: bool = False

    def check(self, spec: AttackSpec) -> None:
        """Raise ValueError when ``spec``'s fields do not fit this attack."""
        if spec.loss != "ce" and not self.loss_choice:
            choosers = ", ".join(name for name in attack_names() if get_attack(name).loss_choice)
            raise ValueError(f"{self.name} fixes its own loss; 'loss' applies to {choosers}")
        if spec.source is not None and not self.uses_gradients:
            raise ValueError(f"{self.name} uses no gradients, so it takes no source model")
        if spec.step_schedule != "constant" and not self.schedules_steps:
            schedulers = ", ".join(name for name in attack_names() if get_attack(name).schedules_steps)
            raise ValueError(f"{self.name} sets its own steps; 'step_schedule' applies to {schedulers}")

    def is_white_box(self, spec: AttackSpec) -> bool:
        """Black-box when crafted on another model; the target's own weights fed its coding's
        expectation (``source: expectation``) are white-box."""
        return self.white_box if spec.source is None else spec.source == EXPECTATION_SOURCE

    def label(self, spec: AttackSpec) -> str:
        """A short readable name of the member, e.g. ``pgd-10-cw[bptt+bpda]`` (``<-SOURCE`` when crafted on one;
        no brackets on a model without spiking layers, ``pgd-10``)."""
        loss = ("" if spec.loss == "ce" else f"-{spec.loss}") + schedule_label(spec)
        steps = self.budget_label(spec)
        restarts = f"x{spec.restarts}" if spec.restarts > 1 else ""
        source = f"<-{spec.source}" if spec.source is not None else ""
        backward = spec.backward_label()
        return f"{self.name}{steps}{restarts}{loss}{f'[{backward}]' if backward else ''}{source}"

    def budget_label(self, spec: AttackSpec) -> str:
        """The budget's part of the label: ``-STEPS``, or nothing when the attack does not show its steps."""
        return f"-{spec.steps}" if self.shows_steps else ""

    def attacked_model(self, model: nn.Module, spec: AttackSpec, sources: dict[str, nn.Module]) -> nn.Module:
        """The model whose gradients the attack follows: its source when it has one, else the target."""
        return model if spec.source is None else sources[spec.source]

    def with_more_steps(self, spec: AttackSpec, factor: int) -> AttackSpec:
        """``spec`` run for ``factor`` times as many steps (a reliability check)."""
        return spec.model_copy(update={"steps": spec.steps * factor})

    def perturb(
        self, model: nn.Module, spec: AttackSpec, images: torch.Tensor, labels: torch.Tensor, seed: int, draws: int
    ) -> torch.Tensor:
        raise NotImplementedError


AttackType = TypeVar("AttackType", bound=type[Attack])


def register_attack(cls: AttackType) -> AttackType:
    """Class decorator: make the attack ``cls.name`` available to protocols, presets and the CLI."""
    if not cls.name:
        raise TypeError(f"{cls.__qualname__} must set a name to be registered")
    if type(cls.version) is not int or cls.version < 1:
        raise TypeError(f"{cls.__qualname__}.version must be a positive integer (the version of its numbers), got {cls.version!r}")
    ATTACKS.register(cls.name, cls(), same=lambda known, new: type(known) is type(new))
    return cls


def _import_builtin_methods() -> None:
    from robustbench_snn.attacks import methods

    for module in pkgutil.iter_modules(methods.__path__):
        importlib.import_module(f"{methods.__name__}.{module.name}")


# Every attack by name: the built-in methods, then those of installed plug-in packages.
ATTACKS: Registry[Attack] = Registry("attack", "robustbench_snn.attacks", _import_builtin_methods)


def attack_names() -> list[str]:
    """Every registered attack's name, sorted."""
    return sorted(ATTACKS)


def unknown_attack(name: object) -> str:
    """The message for an unregistered attack name, with the closest names."""
    names = attack_names()
    return f"unknown attack {name!r}{did_you_mean(name, names)} (attacks: {', '.join(names)})"


def get_attack(name: str) -> Attack:
    """The registered attack ``name``."""
    if name not in ATTACKS:
        raise UserError(unknown_attack(name))
    return ATTACKS[name]
