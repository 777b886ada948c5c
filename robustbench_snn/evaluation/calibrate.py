"""Calibrate: choose, per model, the attack hyper-parameters a protocol searches instead of fixing.

A member may declare ``search: {field: [candidates]}`` (a relaxation's temperature, a surrogate's
sharpness, a step size; `attacks.protocol.SEARCHABLE_FIELDS`). Every hand-fixed value is a place
where the worst case can be wrong, and searching on the evaluated images overfits the evaluation,
so each candidate runs the member once (one restart, its own seed, at most `SEARCH_STEPS` steps
and `SEARCH_QUERIES` queries)
on calibration images: the last `CALIBRATION_IMAGES` of the dataset's test split
(`SURVIVOR_CALIBRATION_IMAGES` for a search on survivors), which an evaluation of its first n
images never attacks, or, for an evaluation that reaches them, the first ones of the training
split. A protocol with ``search_on: survivors`` decides on those of them its first member leaves
robust (its searched members run on a first member's survivors too; on all the calibration
images, easy ones that every candidate fools outvote the hard ones, and the search chose a
sharpness that left the survivors issue 40's red team broke). The candidate that fools the most
of them is chosen, then the one leaving the largest mean margin ``max_{j != y} z_j - z_y``
(logits averaged over the decision's draws), then the first listed; a member with ``search_keep: k``
runs its k best, in that order. Two members whose candidates are one attack once shortened to
`SEARCH_STEPS` (a 100-step attack and the same attack run for 2,000 steps) share one search curve,
run for the first of them. Each choice and every candidate's outcome (the search's curve) is
recorded in the row (`Search`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import torch
from torch import nn

from robustbench_snn.attacks.decision import SequentialDecision
from robustbench_snn.attacks.primitives import margin_loss
from robustbench_snn.attacks.protocol import AttackSpec, Protocol
from robustbench_snn.attacks.runner import attempt_once, decide, normalised
from robustbench_snn.data import dataset_info, load_dataset
from robustbench_snn.errors import DatasetNotFoundError, UserError
from robustbench_snn.models.interface import is_stochastic, reseed
from robustbench_snn.seeds import calibration_seed

logger = logging.getLogger(__name__)

# How many test images, at the end of the split, the searches are decided on.
CALIBRATION_IMAGES = 128
# How many a search on the first member's survivors starts from: on the most robust models that
# member leaves a few percent, and 128 images would leave too few to tell candidates apart.
SURVIVOR_CALIBRATION_IMAGES = 512
# A long member's candidates are compared at this many steps, since a search at 2,000 steps would
# cost more than the evaluation. A short run's best is not always a long run's (on FEEL-SNN it chose
# sharpness 4 for the 2,000-step member, and 6 and 8 broke 2 of the 5 samples it left; issue 40).
SEARCH_STEPS = 100
# A search's candidates are compared at this many of its queries (`pgd-search`'s iterations), for the
# same reason: they differ in their gradient part, and 1,000 iterations per candidate would cost more than the member.
SEARCH_QUERIES = 100
# Fewer survivors of the first member than this tell the candidates apart by chance: the search
# then decides on every calibration image the model gets right.
FEWEST_SURVIVORS = 8


@dataclass(frozen=True)
class Search:
    """One member's search: the field, each candidate's outcome on the calibration images, the choice."""

    member: str  # the chosen member's label
    field: str
    candidates: list[float]
    fooled: list[int]
    mean_margin: list[float]
    chosen: float
    images: str  # which images it was decided on
    steps: int  # the steps each candidate ran (`SEARCH_STEPS` at most)
    kept: list[float]  # the candidates that run, best first (``chosen`` and the next ``search_keep - 1``)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CalibrationImages:
    """The images searches are decided on, and how a row names them."""

    images: torch.Tensor
    labels: torch.Tensor
    description: str


def calibration_images(
    dataset: str, data_dir: str | None, n_evaluated: int | None, device: torch.device | str, count: int = CALIBRATION_IMAGES
) -> CalibrationImages:
    """The last ``count`` images of ``dataset``'s test split, or, when the evaluation's first
    ``n_evaluated`` images (None: the whole split) would include them, the first ones of its
    training split; refused when that split cannot be had either."""
    split = load_dataset(dataset, "test", data_dir)
    start = len(split) - count
    evaluated = len(split) if n_evaluated is None else n_evaluated
    if evaluated <= start:
        return _taken(split, range(start, len(split)), f"{dataset} test[{start}:{len(split)}]", device)
    try:
        training = load_dataset(dataset, "train", data_dir)
    except DatasetNotFoundError:
        raise UserError(
            f"this protocol searches attack settings on images it never evaluates: the last {count} test "
            f"images of {dataset}, or, to evaluate more than {start}, its training split, which is not here "
            f"({dataset_info(dataset).how_to_get}); or give the searched members fixed values"
        ) from None
    return _taken(training, range(count), f"{dataset} train[0:{count}]", device)


def _taken(split, indices: range, description: str, device: torch.device | str) -> CalibrationImages:
    images = torch.stack([split[index][0] for index in indices]).to(device)
    labels = torch.tensor([int(split[index][1]) for index in indices], device=device)
    return CalibrationImages(images, labels, description)


@torch.inference_mode()
def _mean_margin(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, draws: int) -> float:
    draws = draws if is_stochastic(model) else 1
    logits = sum(model(images) for _ in range(draws)) / draws
    return float(margin_loss(logits, labels, "cw").mean())


def _shortened(candidate: AttackSpec) -> AttackSpec:
    """``candidate`` as its search runs it: one restart, at most `SEARCH_STEPS` steps and `SEARCH_QUERIES` queries."""
    shortened = {"steps": min(candidate.steps, SEARCH_STEPS), "queries": min(candidate.queries, SEARCH_QUERIES), "restarts": 1}
    return candidate.model_copy(update=shortened)


def _outcome(model, shortened, calibration, clean, rule, seed, sources) -> tuple[int, float]:
    """How many of the calibration images the `_shortened` candidate fools, and their mean margin after it."""
    still, tried = attempt_once(model, shortened, calibration.images, calibration.labels, clean, rule, seed, sources)
    if is_stochastic(model):
        reseed(model, seed)
    attacked = clean.nonzero().squeeze(1)
    draws = rule.chunk if isinstance(rule, SequentialDecision) else rule
    margin = _mean_margin(model, tried[attacked], calibration.labels[attacked], draws) if attacked.numel() else 0.0
    return int(clean.sum() - still.sum()), margin


def _best(candidates: list[AttackSpec], outcomes: list[tuple[int, float]], count: int) -> list[int]:
    """The indices of the ``count`` best distinct candidates, best first: most fooled, then the
    largest mean margin, then the first listed."""
    ranked = sorted(range(len(candidates)), key=lambda index: (-outcomes[index][0], -outcomes[index][1], index))
    best: list[int] = []
    for index in ranked:
        if all(candidates[index] != candidates[other] for other in best):
            best.append(index)
    return best[:count]


def _searched_images(model, members, calibration, protocol, seed, sources) -> tuple[torch.Tensor, str]:
    """Which calibration images the searches decide on (`Protocol.search_on`), and how a row names them."""
    rule = protocol.rule()
    if is_stochastic(model):
        reseed(model, calibration_seed(seed))
    clean = decide(model, calibration.images, calibration.labels, rule)
    if protocol.search_on == "clean" or not members:
        return clean, calibration.description
    first = normalised(members[0], model)
    survivors, _ = attempt_once(model, first, calibration.images, calibration.labels, clean, rule, calibration_seed(seed, 0), sources)
    if int(survivors.sum()) < FEWEST_SURVIVORS:
        return clean, f"{calibration.description} (all {int(clean.sum())} it gets right: {first.label()} left {int(survivors.sum())})"
    return survivors, f"{calibration.description} (the {int(survivors.sum())} that {first.label()} left robust)"


def calibrate(
    model: nn.Module,
    members: list[AttackSpec],
    calibration: CalibrationImages,
    protocol: Protocol,
    seed: int,
    sources: dict[str, nn.Module],
) -> tuple[list[AttackSpec], list[Search]]:
    """``members`` with every search resolved for ``model`` (each chosen candidate `normalised`),
    and the searches that had a choice to make (candidates that are one attack on this model do not),
    decided as ``protocol`` says (its decision rule, and `Protocol.search_on`)."""
    rule = protocol.rule()
    clean, description = _searched_images(model, members, calibration, protocol, seed, sources)
    resolved, searches = [], []
    curves: dict[str, tuple[int, float]] = {}  # each shortened candidate's outcome, run once
    for number, member in enumerate(members):
        candidates = [normalised(candidate, model) for candidate in member.candidates()]
        for candidate in candidates:
            candidate._later = member.later
        distinct = {candidate.model_dump_json(): candidate for candidate in candidates}
        if len(distinct) == 1:
            resolved.append(candidates[0])
            continue
        ((name, values),) = member.search.items()
        outcomes = []
        for candidate in map(_shortened, candidates):
            key = candidate.model_dump_json()
            if key not in curves:
                curves[key] = _outcome(model, candidate, calibration, clean, rule, calibration_seed(seed, number), sources)
            outcomes.append(curves[key])
        kept = _best(candidates, outcomes, member.search_keep)
        resolved += [candidates[index] for index in kept]
        searches.append(
            Search(
                member=candidates[kept[0]].label(),
                field=name,
                candidates=list(values),
                fooled=[fooled for fooled, _ in outcomes],
                mean_margin=[round(margin, 4) for _, margin in outcomes],
                chosen=values[kept[0]],
                images=description,
                steps=min(member.steps, SEARCH_STEPS),
                kept=[values[index] for index in kept],
            )
        )
        logger.info("%s: %s %s kept on %s (fooled %s)", member.label(), name, searches[-1].kept, description, searches[-1].fooled)
    return resolved, searches


def calibrated_members(
    model: nn.Module,
    members: list[AttackSpec],
    dataset: str,
    data_dir: str | None,
    n_evaluated: int | None,
    protocol: Protocol,
    seed: int,
    sources: dict[str, nn.Module],
) -> tuple[list[AttackSpec], list[Search]]:
    """`calibrate` on ``dataset``'s calibration images, loaded only when a member searches."""
    if not any(member.search for member in members):
        return members, []
    device = next((tensor.device for tensor in model.parameters()), torch.device("cpu"))
    count = SURVIVOR_CALIBRATION_IMAGES if protocol.search_on == "survivors" else CALIBRATION_IMAGES
    calibration = calibration_images(dataset, data_dir, n_evaluated, device, count)
    return calibrate(model, members, calibration, protocol, seed, sources)
