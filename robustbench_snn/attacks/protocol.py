"""Attack protocols: validated configuration of what the runner does, from presets and the CLI.

A protocol is a list of member attacks plus the rule that decides accuracy of stochastic
models. A preset file (``attacks/<name>.yaml``) holds shared fields and, for ensembles, a
``members`` list whose entries override them. Options given on the command line override the
shared fields and the same field of every member.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, PrivateAttr, SerializerFunctionWrapHandler, ValidationError, model_serializer, model_validator

from robustbench_snn.attack_fields import DEFAULT_GRADIENT_MODE, AttackFields, ProtocolOptions
from robustbench_snn.attacks.attack import Attack, attack_names, get_attack, unknown_attack
from robustbench_snn.attacks.decision import SequentialDecision
from robustbench_snn.config import Strict as _Strict
from robustbench_snn.config import describe, load_yaml
from robustbench_snn.data import DatasetInfo
from robustbench_snn.errors import UserError, did_you_mean
from robustbench_snn.models.estimators import EstimatorName, SamplingGradient
from robustbench_snn.models.gradients import GRADIENT_MODES, GradientMode, GradientModeName, SurrogateName
from robustbench_snn.shipped import search_path, shipped_folder


def parse_eps(text: str | float) -> float:
    """An eps given as a number or a fraction such as ``8/255``."""
    try:
        value = float(Fraction(str(text).strip()))
    except (ValueError, ZeroDivisionError, OverflowError):
        raise UserError(f"eps must be a finite number or a fraction like 8/255, got {text!r}") from None
    if value < 0:
        raise UserError(f"eps must be >= 0, got {text!r}")
    return value


def _registered_attack(name: str) -> str:
    if name not in attack_names():
        raise ValueError(unknown_attack(name))
    return name


# The member fields a preset may search per model instead of fixing (`evaluation.calibrate`).
SEARCHABLE_FIELDS = ("temperature", "surrogate_alpha", "surrogate_alpha_last", "step_size")
# The member fields only a preset sets (the command line overrides the others, `AttackFields`).
PRESET_ONLY_FIELDS = ("search", "search_keep", "only_with_estimator", "step_ratio")
# A member's fields once its search is resolved, or where the model makes every candidate one attack.
NO_SEARCH = {"search": None, "search_keep": 1}
# Fields a member leaves out of its identity while unused (members written before them keep theirs).
_UNUSED_FIELD_VALUES = (
    *NO_SEARCH.items(),
    ("only_with_estimator", False),
    ("step_ratio", None),
    ("step_schedule", "constant"),
    ("surrogate_alpha_last", None),
)


class AttackSpec(AttackFields):
    """One attack: its threat model, its budget, and how it gets gradients (`AttackFields`), with
    the registered names checked.

    Three fields are a preset's, not the command line's: ``step_ratio`` gives the step as a
    fraction of eps (a paper's evaluation run at another eps keeps its step); ``search`` names candidates for some of
    the member's hyper-parameters (`SEARCHABLE_FIELDS`) that `evaluation.calibrate` chooses from
    per model, on calibration images, and ``search_keep`` how many of the best candidates run (each
    on the samples the one before left robust); ``only_with_estimator`` runs the member only on models
    whose coding admits its ``estimator`` (elsewhere it does not apply, as a coding's own attacks
    do not apply to another coding)."""

    attack: Annotated[str, AfterValidator(_registered_attack)]
    grad: GradientModeName = DEFAULT_GRADIENT_MODE
    surrogate: SurrogateName | None = None
    estimator: EstimatorName | None = None
    search: dict[str, list[float]] | None = None
    # A short search's best is not always a long run's (issue 40: on FEEL-SNN the second and third
    # sharpness broke what the first left), so a costly member may run its best few candidates.
    search_keep: int = Field(default=1, ge=1, le=8)
    only_with_estimator: bool = False
    # A paper's step as a fraction of its eps (FGSM-style evaluations at eps/3, say), so the preset
    # means the paper's evaluation at any eps it is run at; exclusive with ``step_size``.
    step_ratio: float | None = Field(default=None, gt=0, le=10, allow_inf_nan=False)
    # Set by the runner's planning on members of a protocol's ``later_members`` (not part of the identity).
    _later: bool = PrivateAttr(default=False)
    # Set by the runner's planning on a model without spiking layers, where every gradient is plain backprop.
    _plain_backprop: bool = PrivateAttr(default=False)
    # Set by `one_restart`: which of the member's restarts this copy is (a targeted attack aims
    # restart r at the r-th most likely wrong class, and the runner runs restarts one at a time).
    _restart: int = PrivateAttr(default=0)

    @model_serializer(mode="wrap")
    def _without_unused_preset_fields(self, handler: SerializerFunctionWrapHandler) -> dict:
        # Left out while unused, so that every member written before they existed keeps its identity.
        data = handler(self)
        for name, unused in _UNUSED_FIELD_VALUES:
            if data.get(name, unused) == unused:
                data.pop(name, None)
        return data

    @model_validator(mode="after")
    def _coherent(self) -> "AttackSpec":
        self.method.check(self)
        if self.only_with_estimator and self.estimator is None:
            raise ValueError("only_with_estimator needs an estimator")
        if self.surrogate_alpha_last is not None and (self.surrogate is None or not GRADIENT_MODES[self.grad].through_surrogate):
            raise ValueError("surrogate_alpha_last needs bptt through a named surrogate (surrogate: atan, say)")
        if self.step_ratio is not None and self.step_size is not None:
            raise ValueError("give the step as step_size or as step_ratio (a fraction of eps), not both")
        for name, candidates in (self.search or {}).items():
            if name not in SEARCHABLE_FIELDS:
                raise ValueError(f"search: {name!r} cannot be searched; searchable fields: {', '.join(SEARCHABLE_FIELDS)}")
            if not 2 <= len(candidates) <= 8 or len(set(candidates)) != len(candidates):
                raise ValueError(f"search: {name} needs 2 to 8 distinct candidates, got {candidates}")
            for candidate in candidates:
                type(self).model_validate({**self.model_dump(exclude=set(NO_SEARCH)), name: candidate})
        if self.search is not None and len(self.search) != 1:
            raise ValueError("search: one field per member (a grid over several multiplies the cost)")
        if self.search_keep > max((len(candidates) for candidates in (self.search or {}).values()), default=1):
            raise ValueError(f"search_keep {self.search_keep} needs a search with at least that many candidates")
        labels = [candidate.label() for candidate in self.candidates()]
        if self.search_keep > 1 and len(set(labels)) < len(labels):
            raise ValueError(
                "search_keep runs its candidates as members told apart by their labels, and this search's candidates share one "
                f"({labels[0]}); search a field the label shows (surrogate_alpha, temperature)"
            )
        return self

    def candidates(self) -> list["AttackSpec"]:
        """The member once per candidate of its search (itself when it searches nothing)."""
        if not self.search:
            return [self]
        ((name, values),) = self.search.items()
        return [self.model_copy(update={name: value, **NO_SEARCH}) for value in values]

    @property
    def method(self) -> Attack:
        """The registered attack this member runs."""
        return get_attack(self.attack)

    @property
    def white_box(self) -> bool:
        """Whether the attack uses the target's own weights (a transfer from its expectation does)."""
        return self.method.is_white_box(self)

    @property
    def uses_gradients(self) -> bool:
        return self.method.uses_gradients

    def gradient(self) -> GradientMode:
        rule = GRADIENT_MODES[self.grad]
        surrogate = self.surrogate if rule.through_surrogate else None
        takes_alpha = surrogate is not None or rule.default_parameter is not None
        last = self.surrogate_alpha_last if surrogate is not None else None
        return GradientMode(self.grad, surrogate, self.surrogate_alpha if takes_alpha else None, last)

    def one_restart(self, index: int) -> "AttackSpec":
        """The member's restart ``index`` (from 0) alone: one restart that knows which it is."""
        single = self.model_copy(update={"restarts": 1})
        single._restart = index
        return single

    @property
    def first_restart(self) -> int:
        """Which restart of the member this spec's first is (0 unless made by `one_restart`)."""
        return self._restart

    @property
    def later(self) -> bool:
        """Whether the member came from its protocol's ``later_members``."""
        return self._later

    def sampling_gradient(self) -> SamplingGradient | None:
        """The gradient estimator through a stochastic encoder's sampling (None: the coding's default)."""
        return None if self.estimator is None else SamplingGradient(self.estimator, self.temperature)

    def backward_label(self) -> str:
        """How the member differentiates: the SNN gradient mode, BPDA and the sampling's estimator
        (no mode on a model without spiking layers, where every gradient is plain backprop)."""
        estimator = self.sampling_gradient()
        mode = "" if self._plain_backprop else self.gradient().label()
        return f"{mode}{'+bpda' if self.bpda else ''}{'|' + estimator.label() if estimator else ''}".lstrip("+")

    def label(self) -> str:
        searched = "".join(f"{{{name} searched}}" for name in self.search or {})
        return self.method.label(self) + searched


MEMBER_FIELDS = tuple(AttackSpec.model_fields)


class Convergence(_Strict):
    """Budget spent until an attack stops finding samples (Carlini et al. 2019).

    The cheap members (`attacks.runner.converges`) of the protocol's ``members``, or with
    ``applies_to: later_members`` of its later members alone (so an earlier version's run stays
    the exact start of this one), or with ``applies_to: restarted`` of the members that declare
    restarts (wherever the schedule puts them), get their restarts doubled, on the samples still
    robust, until a doubling fools at most ``share`` of the batch's images; at least
    ``min_doublings`` and at most ``max_doublings`` doublings. With ``min_doublings: 0`` the
    declared restarts count as the first look: a member whose restarts fooled at most ``share``
    is not doubled. A member still finding more after the last is ``not_converged``.
    """

    applies_to: Literal["members", "later_members", "restarted"] = "members"
    share: float = Field(default=0.01, ge=0, le=1, allow_inf_nan=False)
    min_doublings: int = Field(default=1, ge=0, le=10)
    max_doublings: int = Field(default=3, ge=1, le=10)

    @model_validator(mode="after")
    def _ordered(self) -> "Convergence":
        if self.min_doublings > self.max_doublings:
            raise ValueError("min_doublings must not exceed max_doublings")
        return self

    def covers(self, member: AttackSpec) -> bool:
        """Whether ``member`` is one this rule may spend more restarts on (`applies_to`)."""
        if self.applies_to == "restarted":
            return member.restarts > 1
        return (self.applies_to == "later_members") == member.later


class Protocol(_Strict):
    """A named list of attacks; a sample is robust only if every member fails on it.

    ``later_members`` run after every one of ``members`` (and the coding's attacks), in their own
    order: a later version of a protocol adds its attacks there, so that the earlier version's run
    is the exact start of its own (the same members, order, samples and seeds) and it can never
    report a higher robust accuracy on the same images.
    """

    name: str
    version: int = Field(default=1, ge=1)
    description: str = ""
    members: list[AttackSpec] = Field(default_factory=list)
    later_members: list[AttackSpec] = Field(default_factory=list)
    eval_draws: int = ProtocolOptions.model_fields["eval_draws"]
    # When set, a stochastic model's answers are decided by this sequential test instead of by
    # ``eval_draws`` draws, for the clean inputs, every member and every check (`attacks.decision`).
    sequential: SequentialDecision | None = None
    checks: bool = ProtocolOptions.model_fields["checks"]
    adaptive: bool = False
    convergence: Convergence | None = None
    # The calibration images a member's search is decided on (`evaluation.calibrate`): every one the
    # model gets right, or those its first member leaves robust, where the searched members run.
    search_on: Literal["clean", "survivors"] = "clean"
    n_examples: int | None = Field(default=None, ge=1)

    @model_serializer(mode="wrap")
    def _without_unused_fields(self, handler: SerializerFunctionWrapHandler) -> dict:
        # Left out while unused, so that every protocol written before they existed keeps its identity.
        data = handler(self)
        for name, unused in (("sequential", None), ("search_on", "clean")):
            if data.get(name, unused) == unused:
                data.pop(name, None)
        return data

    def rule(self) -> "int | SequentialDecision":
        """How a stochastic model's answer is decided: the sequential test, else ``eval_draws`` draws (`runner.decide`)."""
        return self.sequential if self.sequential is not None else self.eval_draws

    @classmethod
    def deciding(cls, name: str, rule: "int | SequentialDecision", **fields) -> "Protocol":
        """A protocol named ``name`` that decides by ``rule`` (a number of draws, or a sequential test)."""
        if isinstance(rule, SequentialDecision):
            return cls(name=name, sequential=rule, **fields)
        return cls(name=name, eval_draws=rule, **fields)

    def resolved(self, dataset: DatasetInfo) -> "Protocol":
        """The protocol with every unset eps filled in from the dataset's standard threat model."""

        def filled(members: list[AttackSpec]) -> list[AttackSpec]:
            for member in members:
                if member.eps is not None and member.eps > dataset.largest_eps(member.norm):
                    raise UserError(
                        f"eps {member.eps:g} is outside {dataset.name}'s data range: images lie in [0, 1], and a {member.norm} ball "
                        f"of radius {dataset.largest_eps(member.norm):.4g} already holds every image (its threat model: "
                        f"eps {dataset.default_eps(member.norm):.4g}; fractions such as 8/255 are accepted)"
                    )
            return [
                member if member.eps is not None else member.model_copy(update={"eps": dataset.default_eps(member.norm)})
                for member in members
            ]

        return self.model_copy(update={"members": filled(self.members), "later_members": filled(self.later_members)})

    def label(self) -> str:
        return self.name


def presets_dirs(override: str | os.PathLike | None = None) -> list[Path]:
    """The preset folders, first match first: ``override`` alone, else those in ``$RSC_BENCH_ATTACKS``,
    then the shipped ``attacks/``."""
    return search_path("attacks", override)


def official_presets() -> dict[str, Path]:
    """The presets as shipped: the only ones whose unmodified runs fill official cells."""
    return list_presets(shipped_folder("attacks"))


def _read_preset_data(path: Path) -> dict:
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: an attack preset must be a YAML mapping")
    return data


def list_presets(directory: str | os.PathLike | None = None) -> dict[str, Path]:
    """Preset names and their files."""
    found: dict[str, Path] = {}
    for folder in presets_dirs(directory):
        for path in sorted(folder.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def _overridden(member: dict, overrides: dict) -> dict:
    """``member`` with the command line's ``overrides``; a step size given there replaces a preset's step ratio."""
    if "step_size" in overrides:
        member = {key: value for key, value in member.items() if key != "step_ratio"}
    return {**member, **overrides}


def build_protocol(
    attack: str,
    overrides: dict | None = None,
    directory: str | os.PathLike | None = None,
) -> Protocol:
    """The protocol named ``attack`` (a preset, or a bare attack name) with ``overrides`` applied.

    ``overrides`` holds member fields (eps, steps, grad, eot, ...) and protocol fields
    (eval_draws, checks, n_examples); ``None`` values are ignored.
    """
    if overrides is not None and not isinstance(overrides, dict):
        raise UserError(f"overrides must be a mapping of protocol fields to values (eps, steps, ...), not a {type(overrides).__name__}")
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    unknown = set(overrides) - set(MEMBER_FIELDS) - {"eval_draws", "sequential", "checks", "n_examples", "adaptive", "convergence"}
    if unknown:
        raise UserError(f"unknown protocol option(s): {', '.join(sorted(unknown))}")
    presets = list_presets(directory)
    if attack == "none":
        member_options = sorted(set(overrides) & set(MEMBER_FIELDS))
        if member_options:
            raise UserError(f"option(s) {', '.join(member_options)} need an attack; --attack none only measures clean accuracy")
        return Protocol(name="none", description="clean accuracy, no attack", **overrides)
    if attack in presets:
        data = _read_preset_data(presets[attack])
        source = str(presets[attack])
    elif attack in attack_names():
        data = {"name": attack, "attack": attack}
        source = f"attack {attack!r}"
    else:
        hint = did_you_mean(attack, sorted({*presets, *attack_names()}))
        raise UserError(
            f"unknown attack {attack!r}{hint} (none: clean only; presets: {', '.join(presets) or '(none)'}; "
            f"attacks: {', '.join(attack_names())})"
        )
    shared = {key: value for key, value in data.items() if key in MEMBER_FIELDS}
    member_overrides = {key: value for key, value in overrides.items() if key in MEMBER_FIELDS}
    members, later = data.get("members", [{}]), data.get("later_members", [])
    if not isinstance(members, list) or not members or not all(isinstance(member, dict) for member in members):
        raise UserError(f"{source}: 'members' must be a non-empty list of mappings")
    if not isinstance(later, list) or not all(isinstance(member, dict) for member in later):
        raise UserError(f"{source}: 'later_members' must be a list of mappings")
    protocol_data = {key: value for key, value in data.items() if key not in MEMBER_FIELDS}
    protocol_data.update({key: value for key, value in overrides.items() if key not in MEMBER_FIELDS})
    protocol_data["members"] = [_overridden({**shared, **member}, member_overrides) for member in members]
    protocol_data["later_members"] = [_overridden({**shared, **member}, member_overrides) for member in later]
    protocol_data.setdefault("name", attack)
    if attack in presets and protocol_data["name"] != attack:
        # A row is stored under the protocol's name: a preset named otherwise would file its rows under another protocol's.
        raise UserError(f"{source}: its name is {protocol_data['name']!r}; a preset's name must be its file's name ({attack!r})")
    try:
        return Protocol.model_validate(protocol_data)
    except ValidationError as error:
        raise UserError(f"{source}: invalid attack protocol\n{describe(error, '(protocol)')}") from None


__all__ = [
    "AttackSpec",
    "Convergence",
    "Protocol",
    "build_protocol",
    "list_presets",
    "official_presets",
    "parse_eps",
    "presets_dirs",
]
