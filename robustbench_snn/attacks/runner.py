"""The runner: a protocol's members on one batch, and the rule that decides a stochastic model's accuracy.

Decision rule (one rule, for clean and adversarial inputs alike): with ``eval_draws = m``, a
sample counts as correct only if the model is right on every one of m independent encoder
draws. For m = 1 this is plain accuracy; for m > 1 it is conservative, so robust accuracy can
be underestimated by the rule but never inflated by a lucky draw. A protocol may decide by a
sequential test with a stated error instead (``sequential``, `attacks.decision`). A sample is robust only if
it is correct on its clean input and every member fails on it. Members run white-box first,
then black-box, each only on the samples still robust.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from robustbench_snn.attack_fields import DEFAULT_GRADIENT_MODE
from robustbench_snn.attacks.attack import EXPECTATION_SOURCE
from robustbench_snn.attacks.bpda import bpda_context
from robustbench_snn.attacks.decision import SequentialDecision, decide_sequentially
from robustbench_snn.attacks.primitives import ExpectedLogits, draw_chunks, input_gradient, margin_loss, repeated
from robustbench_snn.attacks.protocol import NO_SEARCH, AttackSpec, Protocol
from robustbench_snn.models.estimators import ESTIMATORS
from robustbench_snn.models.gradients import GRADIENT_MODES, SURROGATES
from robustbench_snn.models.interface import GradientLimited, has_spiking_layers, is_smoothed, is_stochastic, reseed
from robustbench_snn.progress import reporting_stages
from robustbench_snn.seeds import member_seed, one_draw_seed, redecision_seed, restart_seed

logger = logging.getLogger(__name__)


def unsupported(model: nn.Module, member: AttackSpec) -> str | None:
    """Why ``member`` cannot run on ``model`` (its SNN gradient mode is not one the model supports), else None."""
    supported = model.supported_gradients if isinstance(model, GradientLimited) else None
    if supported is None or not member.uses_gradients or member.grad in supported:
        return None
    return f"{member.label()}: gradient mode {member.grad} is not supported by this model (it supports {', '.join(supported)})"


def eot_draws(model: nn.Module, spec: AttackSpec) -> int:
    """EOT draws per gradient: the member's ``eot`` for stochastic models, 1 otherwise."""
    return spec.eot if is_stochastic(model) else 1


def admitted_estimators(model: nn.Module) -> tuple[str, ...]:
    """The gradient estimators a stochastic model's encoder declares for its sampling (none otherwise)."""
    return tuple(getattr(getattr(model, "encoder", None), "estimators", ())) if is_stochastic(model) else ()


def gradient_context(model: nn.Module, spec: AttackSpec) -> ExitStack:
    """Run ``spec`` with its SNN gradient mode and its sampling estimator set on ``model`` (each a
    no-op for models without spiking layers, or without an encoder that admits estimators)."""
    stack = ExitStack()
    if has_spiking_layers(model):
        stack.enter_context(model.using_gradient(spec.gradient()))
    if spec.estimator is not None and spec.estimator in admitted_estimators(model):
        stack.enter_context(model.encoder.using_estimator(spec.sampling_gradient()))
    return stack


@torch.inference_mode()
def decide(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, draws: int | SequentialDecision) -> torch.Tensor:
    """Per-sample correctness under the decision rule: right on every one of ``draws`` draws, or,
    given a `SequentialDecision`, its test's verdict (one forward for a deterministic model).

    A smoothed classifier is decided by its own prediction, the majority vote of its draws.
    """
    if is_smoothed(model):
        return (model.predict(images) == labels).cpu() if len(images) else torch.ones(0, dtype=torch.bool)
    if isinstance(draws, SequentialDecision):
        if is_stochastic(model):
            return decide_sequentially(model, images, labels, draws)
        draws = 1
    draws = draws if is_stochastic(model) else 1
    correct = torch.ones(len(images), dtype=torch.bool, device=images.device)
    for count in draw_chunks(draws, images) if len(images) else []:
        predictions = model(repeated(images, count)).argmax(1).view(count, len(images))
        correct &= (predictions == labels.unsqueeze(0)).all(0)
    return correct.cpu()


def adaptive_members(model: nn.Module, protocol: Protocol) -> list[AttackSpec]:
    """The attacks the model's encoder declares for its coding, each over the protocol's first
    white-box member (its eps, norm, EOT); none unless the protocol asks for them."""
    encoder = getattr(model, "encoder", None)
    reference = next((member for member in protocol.members if member.white_box), None)
    if not protocol.adaptive or encoder is None or reference is None:
        return []
    return [AttackSpec.model_validate({**reference.model_dump(), **fields}) for fields in encoder.adaptive_attacks]


def training_surrogate(model: nn.Module) -> tuple[str, float] | None:
    """The surrogate and sharpness ``model``'s spiking layers were trained with (None without any)."""
    layers = getattr(model, "spiking_layers", [])
    return (layers[0].config.surrogate, layers[0].config.surrogate_alpha) if layers else None


def normalised(member: AttackSpec, model: nn.Module) -> AttackSpec:
    """``member`` with every default spelled out removed, so one attack has one form, one label
    and one identity: the model's own training surrogate is ``surrogate: None``, a mode's default
    parameter is ``None``, and settings a mode ignores are dropped. An estimator the model's coding
    does not admit (a deterministic model admits none) is its coding's default, as SNN gradient
    modes are plain backprop on an ANN; and a deterministic model is its own expectation, so an
    attack (other than a transfer, which names its source) crafted on the expectation is crafted
    on the model."""
    update: dict = _normalised_estimator(member, model)
    rule = GRADIENT_MODES[member.grad]
    if getattr(model, "keeps_own_surrogate", False) and rule.through_surrogate:
        member = member.model_copy(update={"surrogate": None, "surrogate_alpha": None, "surrogate_alpha_last": None})
    if member.source == EXPECTATION_SOURCE and not member.method.needs_source and not is_stochastic(model):
        update["source"] = None
    # A searched sharpness is left as declared: each candidate is normalised when it is chosen (`evaluation.calibrate`).
    searches_sharpness = bool({"surrogate_alpha", "surrogate_alpha_last"} & set(member.search or {}))
    last = None if member.surrogate_alpha_last == member.surrogate_alpha else member.surrogate_alpha_last
    if last is None and member.surrogate_alpha_last is not None:
        update["surrogate_alpha_last"] = None
    if last is not None and (member.surrogate is None or not rule.through_surrogate):
        update["surrogate_alpha_last"] = None  # no named surrogate: every layer keeps the model's own (or none)
    if rule.through_surrogate and member.surrogate is None:
        update.update({"surrogate_alpha": None} if member.surrogate_alpha is not None else {})
        update.update(NO_SEARCH if searches_sharpness else {})
    elif rule.through_surrogate and not searches_sharpness:
        alpha = member.surrogate_alpha if member.surrogate_alpha is not None else SURROGATES[member.surrogate].default_alpha
        if (member.surrogate, alpha) == training_surrogate(model) and last is None:
            update.update({"surrogate": None, "surrogate_alpha": None})
    elif not rule.through_surrogate:
        update["surrogate"] = None
        default = rule.default_parameter
        if default is None:
            update.update({"surrogate_alpha": None, **(NO_SEARCH if searches_sharpness else {})})
        elif member.surrogate_alpha == default and not searches_sharpness:
            update["surrogate_alpha"] = None
    return member.model_copy(update=update) if update else member


def applies(member: AttackSpec, model: nn.Module) -> bool:
    """Whether ``member`` applies to ``model`` at all: one that runs only with its estimator does
    not where the model's coding does not admit it."""
    return not member.only_with_estimator or member.estimator in admitted_estimators(model)


def _normalised_estimator(member: AttackSpec, model: nn.Module) -> dict:
    admitted = admitted_estimators(model)
    if not applies(member, model):
        return {}
    if member.estimator is None or member.estimator not in admitted or member.estimator == admitted[0]:
        if member.estimator is None and member.temperature is None:
            return {}
        searched = NO_SEARCH if "temperature" in (member.search or {}) else {}
        return {"estimator": None, "temperature": None, "only_with_estimator": False, **searched}
    default = ESTIMATORS[member.estimator].default_temperature
    if member.temperature is not None and (default is None or member.temperature == default):
        return {"temperature": None}
    return {}


def effective_members(model: nn.Module, protocol: Protocol, quantized: bool = False) -> list[AttackSpec]:
    """The members to run, each `normalised`: white-box first, with the encoder's adaptive attacks
    (when the protocol asks for them) right after the first member, then transfers from other
    models, Square last; each runs only on the samples still robust, so the cheap ones go early.
    The protocol's ``later_members`` follow, ordered the same way among themselves. Members that
    are the same attack on this model run once: for a model without spiking layers SNN gradient
    modes are all plain backprop, and without a quantising operation (``quantized``) BPDA changes
    nothing."""
    # The coding's attacks are cheap transfers: right after the first member, they leave the
    # costlier members fewer samples to attack.
    stages = ([*protocol.members[:1], *adaptive_members(model, protocol), *protocol.members[1:]], protocol.later_members)
    plain: dict[str, AttackSpec] = {}
    ordered: list[AttackSpec] = []
    for later, stage in enumerate(stages):
        kept = []
        for member in filter(functools.partial(applies, model=model), stage):
            member = normalised(member, model).model_copy()  # a copy: the stage mark never reaches the caller's protocol
            member._later = bool(later)
            if not has_spiking_layers(model):
                member = member.model_copy(
                    update={"grad": DEFAULT_GRADIENT_MODE, "surrogate": None, "surrogate_alpha": None, "surrogate_alpha_last": None}
                )
                member._plain_backprop = True
            if member.bpda and not quantized:
                member = member.model_copy(update={"bpda": False})
            if plain.setdefault(member.model_dump_json(), member) is member:
                kept.append(member)
        ordered += sorted(kept, key=lambda member: (not member.white_box, member.method.query_based))
    return ordered


def converges(model: nn.Module, member: AttackSpec, number: int) -> bool:
    """Whether the protocol's convergence rule spends more budget on ``member`` (the ``number``-th):
    the cheap ones, one forward per step: on a stochastic model those crafted on the coding's
    deterministic expectation; on a deterministic model (its own expectation) its first member and
    its white-box gradient members that are later or declare restarts. A stochastic model's costly members are checked for
    convergence on the survivors instead (`attacks.flags.run_checks`)."""
    if is_stochastic(model):
        return member.source == EXPECTATION_SOURCE
    return member.uses_gradients and member.white_box and (number == 0 or member.later or member.restarts > 1)


@dataclass
class BatchOutcome:
    """Per-sample results of one batch, in the batch's order."""

    clean: list[bool]
    robust: list[bool]
    fooled_by: list[str | None]
    zero_gradients: dict[str, int] = field(default_factory=dict)
    member_seconds: dict[str, float] = field(default_factory=dict)
    clean_one_draw: list[bool] = field(default_factory=list)
    # The input that fooled each sample, else the clean input (only when asked for; not stored).
    adversarial: torch.Tensor | None = None
    # The last input each sample was decided on: the one that fooled it, else the last member's
    # attempt, else (never attacked) the clean input; the protocol's final inputs (not stored).
    final: torch.Tensor | None = None
    # The seed of each restart that ran, per member label.
    member_seeds: dict[str, list[int]] = field(default_factory=dict)
    # Per converging member: the restarts run so far and the robust count after each doubling.
    convergence: dict[str, dict] = field(default_factory=dict)
    # Per member: the samples it fooled whose fooling input is wrong again when decided a second
    # time on fresh draws (all of them on a deterministic model).
    kills_holding: dict[str, int] = field(default_factory=dict)


def count_zero_gradients(model: nn.Module, spec: AttackSpec, images: torch.Tensor, labels: torch.Tensor) -> int:
    """How many samples have an all-zero or non-finite input gradient of the loss under ``spec``'s mode."""
    if len(images) == 0:
        return 0
    images = images.detach().requires_grad_(True)
    with gradient_context(model, spec):
        gradient = input_gradient(F.cross_entropy(model(images), labels, reduction="sum"), images)
    flat = gradient.flatten(1)
    broken = (~torch.isfinite(flat).all(1)) | (flat.abs().sum(1) == 0)
    return int(broken.sum())


def perturb(
    model: nn.Module,
    spec: AttackSpec,
    images: torch.Tensor,
    labels: torch.Tensor,
    seed: int,
    sources: dict[str, nn.Module],
    starts: torch.Tensor | None = None,
) -> torch.Tensor:
    """Adversarial examples for ``images`` under one member, with its gradient mode and BPDA set on
    the model it differentiates (the target, or a transfer's source); a member whose attack
    `Attack.warm_starts` gets ``starts`` (the clean inputs when none are given)."""
    method = spec.method
    attacked = method.attacked_model(model, spec, sources)
    warm = {"starts": images if starts is None else starts} if method.warm_starts else {}
    with gradient_context(attacked, spec), bpda_context(spec.bpda):
        return method.perturb(attacked, spec, images, labels, seed, eot_draws(attacked, spec), **warm)


class _BatchRun:
    """The state of one batch under attack: who is still robust, who fooled whom, the inputs kept."""

    def __init__(self, model, protocol, images, labels, sources, clean, keep_adversarial, track_best=False):
        self.model, self.protocol, self.images, self.labels, self.sources = model, protocol, images, labels, sources
        self.robust = clean.clone()
        self.fooled_by: list[str | None] = [None] * len(images)
        self.kept = images.detach().clone() if keep_adversarial else None
        self.final = images.detach().clone()
        self.seeds: dict[str, list[int]] = {}
        # With ``track_best`` (a member warm-starts): each sample's input of largest margin so far.
        self.best = images.detach().clone() if track_best else None
        self.best_margin = self.margins(images, labels) if track_best else None

    def margins(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The CW margin of ``images`` on the target (above 0: misclassified), its logits averaged
        over the protocol's decision draws on a stochastic model."""
        draws = self.protocol.eval_draws if is_stochastic(self.model) else 1
        with torch.no_grad():
            return margin_loss(ExpectedLogits(self.model, draws)(images), labels, "cw")

    def keep_best(self, index: torch.Tensor, adversarial: torch.Tensor) -> None:
        """Keep ``adversarial`` (the inputs of the samples at ``index``) where its margin is the largest yet."""
        margins = self.margins(adversarial, self.labels[index])
        better = margins > self.best_margin[index]
        self.best[index[better]] = adversarial[better].detach().to(self.best.dtype)
        self.best_margin[index[better]] = margins[better]

    def attempt(self, member: AttackSpec, seed: int, restart: int = 0) -> int:
        """Restart ``restart`` of ``member``, from ``seed``, on the samples still robust; how many it fooled.

        A stochastic model's draws restart at ``seed`` too, so an attempt's outcome depends on its
        seed and the samples it is given alone, not on what ran before it."""
        index = self.robust.nonzero().squeeze(1)
        if index.numel() == 0:
            return 0
        self.seeds.setdefault(member.label(), []).append(seed)
        if is_stochastic(self.model):
            reseed(self.model, seed)
        starts = self.best[index] if self.best is not None else None
        adversarial = perturb(self.model, member.one_restart(restart), self.images[index], self.labels[index], seed, self.sources, starts)
        survived = decide(self.model, adversarial, self.labels[index], self.protocol.rule())
        self.final[index] = adversarial.detach().to(self.final.dtype)
        if self.best is not None:
            self.keep_best(index, adversarial)
        if self.kept is not None:
            self.kept[index[~survived.to(index.device)]] = adversarial[~survived.to(adversarial.device)].detach()
        for position in index[~survived].tolist():
            self.robust[position] = False
            self.fooled_by[position] = member.label()
        return int((~survived).sum())

    def run(self, member: AttackSpec, seed: int, converge: bool) -> dict | None:
        """Every restart of ``member``; when it should ``converge`` under the protocol's rule, the
        doublings after them, and the curve: restarts run and samples still robust after each."""
        found = [self.attempt(member, restart_seed(seed, restart), restart) for restart in range(member.restarts)]
        rule = self.protocol.convergence
        if rule is None or not converge:
            return None

        def converged(found: list[int]) -> bool:
            return sum(found) <= rule.share * len(self.images)

        # The declared restarts are the first look: with ``min_doublings: 0`` they may already have converged.
        restarts, curve = [member.restarts], [int(self.robust.sum())]
        while len(restarts) - 1 < rule.max_doublings and not (len(restarts) - 1 >= rule.min_doublings and converged(found)):
            done = restarts[-1]
            found = [self.attempt(member, restart_seed(seed, restart), restart) for restart in range(done, 2 * done)]
            restarts.append(2 * done)
            curve.append(int(self.robust.sum()))
        return {"restarts": restarts, "robust": curve, "converged": converged(found)}


def attempt_once(
    model: nn.Module,
    spec: AttackSpec,
    images: torch.Tensor,
    labels: torch.Tensor,
    attacked: torch.Tensor,
    rule: int | SequentialDecision,
    seed: int,
    sources: dict[str, nn.Module],
) -> tuple[torch.Tensor, torch.Tensor]:
    """One restart of ``spec`` from ``seed`` on the samples ``attacked`` marks, decided by ``rule``
    (`decide`): which of ``images`` are still correct and attacked after it, and the inputs it last
    tried (the clean ones where it did not run)."""
    batch = _BatchRun(model, Protocol.deciding(spec.label(), rule), images, labels, sources, attacked, False, spec.method.warm_starts)
    batch.attempt(spec, seed)
    return batch.robust, batch.final


def attack_samples(
    model: nn.Module,
    spec: AttackSpec,
    images: torch.Tensor,
    labels: torch.Tensor,
    rule: int | SequentialDecision,
    seed: int,
    sources: dict[str, nn.Module],
) -> torch.Tensor:
    """Which of ``images`` stay correct under every restart of ``spec`` from ``seed``, decided by ``rule`` (`decide`)."""
    protocol = Protocol.deciding(spec.label(), rule, members=[spec])
    robust = torch.ones(len(images), dtype=torch.bool)
    batch = _BatchRun(model, protocol, images, labels, sources, robust, False, spec.method.warm_starts)
    batch.run(spec, seed, converge=False)
    return batch.robust


def attack_batch(
    model: nn.Module,
    protocol: Protocol,
    members: list[AttackSpec],
    images: torch.Tensor,
    labels: torch.Tensor,
    seed: int,
    sources: dict[str, nn.Module],
    count_gradients: bool = True,
    keep_adversarial: bool = False,
    on_member: Callable[[int], None] | None = None,
) -> BatchOutcome:
    """Run every member on the samples still robust; record which member fooled each sample (and,
    with ``keep_adversarial``, the input that fooled it). Each restart of a member has its own seed
    (`seeds.restart_seed`), recorded; the protocol's convergence rule adds restarts to the members
    it names (`converges`). ``on_member(k)`` is called after the clean decision (k = 0) and after
    the k-th member."""
    announce = on_member or (lambda done: None)
    if is_stochastic(model):
        reseed(model, seed)
    clean = decide(model, images, labels, protocol.rule())
    zero_gradients: dict[str, int] = {}
    if count_gradients:
        correct = clean.nonzero().squeeze(1)
        for member in members:
            if member.white_box and member.gradient().label() not in zero_gradients:
                zero_gradients[member.gradient().label()] = count_zero_gradients(model, member, images[correct], labels[correct])
    announce(0)
    track_best = any(member.method.warm_starts for member in members)
    batch = _BatchRun(model, protocol, images, labels, sources, clean, keep_adversarial, track_best)
    member_seconds: dict[str, float] = {}
    convergence: dict[str, dict] = {}
    for number, member in enumerate(members):
        if not batch.robust.any():
            break
        started = time.perf_counter()
        in_scope = protocol.convergence is not None and protocol.convergence.covers(member)
        with reporting_stages(lambda share, done=number: announce(done + share)):
            curve = batch.run(member, member_seed(seed, number), in_scope and converges(model, member, number))
        member_seconds[member.label()] = time.perf_counter() - started
        if curve is not None:
            convergence[member.label()] = curve
        announce(number + 1)
    one_draw = clean
    if is_stochastic(model) and not is_smoothed(model) and (protocol.eval_draws > 1 or protocol.sequential is not None):
        reseed(model, one_draw_seed(seed))
        one_draw = decide(model, images, labels, 1)
    kills_holding = _kills_holding(model, batch, labels, protocol.rule(), redecision_seed(seed))
    return BatchOutcome(
        clean.tolist(),
        batch.robust.tolist(),
        batch.fooled_by,
        zero_gradients,
        member_seconds,
        one_draw.tolist(),
        batch.kept,
        batch.final,
        batch.seeds,
        convergence,
        kills_holding,
    )


def _kills_holding(
    model: nn.Module, batch: "_BatchRun", labels: torch.Tensor, draws: int | SequentialDecision, seed: int
) -> dict[str, int]:
    """Per member, how many of its kills hold when each fooling input is decided again on fresh
    draws: a stochastic model's decision is a sample too, and a kill that does not hold is an input
    near the boundary rather than one the attack made wrong (issue 40: the union over many members
    has many chances at such inputs)."""
    fooled = [index for index, who in enumerate(batch.fooled_by) if who is not None]
    holding: dict[str, int] = {}
    if not fooled:
        return holding
    index = torch.tensor(fooled)
    still_wrong = [True] * len(fooled)
    if is_stochastic(model):
        reseed(model, seed)
        still_wrong = (~decide(model, batch.final[index.to(batch.final.device)], labels[index.to(labels.device)], draws)).tolist()
    for position, wrong in zip(fooled, still_wrong):
        who = batch.fooled_by[position]
        holding[who] = holding.get(who, 0) + int(wrong)
    return holding
