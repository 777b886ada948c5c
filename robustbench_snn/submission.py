"""Checks of a submitted model card and checkpoint, run by ``rsc-bench submit check`` and by CI on pull requests.

In order, each depending on the ones before: the card validates; its checkpoint is found and has
the card's size and sha256; its weights are not a registered model's saved again; it loads safely
into the card's architecture; its clean accuracy on the first n test images agrees with the
card's claim and is above chance; a short PGD attack lowers accuracy and raises no reliability
flag (the attack-based checks included).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from robustbench_snn.data import dataset_info
from robustbench_snn.errors import UserError
from robustbench_snn.evaluation import benchmark
from robustbench_snn.registry import ModelCard, list_cards, load_model, read_card, resolve_checkpoint
from robustbench_snn.registry.checkpoints import read_state_dict

logger = logging.getLogger(__name__)

# A claim may differ from a re-measurement on n images by sampling error (3 standard errors) plus
# this much, since the claim was measured on the whole split (and stochastic models vary by draw).
ACCURACY_SLACK = 0.01


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class SubmissionReport:
    card: str
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)

    def as_dict(self) -> dict:
        return {"card": self.card, "passed": self.passed, "checks": [asdict(check) for check in self.checks]}


def accuracy_tolerance(claimed: float, n: int) -> float:
    return 3 * math.sqrt(max(claimed * (1 - claimed), 1e-4) / n) + ACCURACY_SLACK


def chance_note(accuracy: float, n_examples: int, classes: int) -> str | None:
    """What to tell of a model whose clean accuracy on ``n_examples`` images is within sampling
    error (3 standard errors) of guessing among ``classes``; None for one that learned."""
    chance = 1 / classes
    if accuracy > chance + 3 * math.sqrt(chance * (1 - chance) / n_examples):
        return None
    return f"clean accuracy {100 * accuracy:.2f}% is chance for {classes} classes ({100 * chance:.0f}%): the model did not learn"


def registered_with_weights(state: dict, exclude: str | os.PathLike | None = None) -> str | None:
    """The registered model whose checkpoint holds exactly the tensors of ``state`` (names,
    shapes, values), whatever its file; None if no registered model does."""
    for other in list_cards():
        if other.checkpoint is None or (exclude is not None and str(other.path) == str(exclude)):
            continue
        try:
            theirs = read_state_dict(resolve_checkpoint(other)[0])
        except UserError:
            continue
        if theirs.keys() == state.keys() and all(
            theirs[name].shape == tensor.shape and torch.equal(theirs[name], tensor) for name, tensor in state.items()
        ):
            return other.name
    return None


def check_submission(
    card_path: str | os.PathLike,
    n_examples: int = 1000,
    attack_examples: int = 200,
    data_dir: str | None = None,
    seed: int = 0,
    progress: bool = False,
    on_check: Callable[[Check], None] | None = None,
) -> SubmissionReport:
    """Run every check on the card at ``card_path``; stops at the first check the later ones need.

    ``on_check`` is called with each check as it finishes; ``progress`` shows the evaluations' bars.
    Nothing is stored.
    """
    report = SubmissionReport(str(card_path))

    def record(check: Check) -> None:
        report.checks.append(check)
        if on_check is not None:
            on_check(check)

    def step(name: str, action):
        try:
            passed, detail, value = action()
        except UserError as error:
            passed, detail, value = False, str(error), None
        record(Check(name, passed, detail))
        return value if passed else None

    card: ModelCard | None = step("card", lambda: (True, "valid model card", read_card(card_path)))
    if card is None:
        return report

    def unique_name():
        others = [other.path for other in list_cards() if other.name == card.name and other.path != card.path]
        if others:
            return False, f"the name {card.name!r} is already registered ({others[0]}); choose another", None
        return True, f"the name {card.name!r} is new", card

    if step("name", unique_name) is None:
        return report
    if card.checkpoint is None:
        record(Check("checkpoint", False, "the card names no checkpoint (path or url)"))
        return report
    checkpoint = step("checkpoint", lambda: (True, f"size and sha256 {card.checkpoint.sha256[:12]}... match", resolve_checkpoint(card)))
    if checkpoint is None:
        return report

    def new_weights():
        same = registered_with_weights(read_state_dict(checkpoint[0]), exclude=card.path)
        if same is not None:
            return False, f"its weights are those of the registered model {same!r} (the same tensors, saved again)", None
        return True, "no registered model has these weights", True

    if step("weights", new_weights) is None:
        return report
    model = step("loads", lambda: (True, f"weights fit architecture {card.architecture.name}", load_model(str(card_path), seed=seed)))
    if model is None:
        return report
    if card.claimed is None:
        record(Check("clean accuracy", False, "the card claims no clean accuracy"))
        return report

    def clean_accuracy():
        measured = benchmark(model, n_examples=n_examples, seed=seed, data_dir=data_dir, progress=progress)
        tolerance = accuracy_tolerance(card.claimed.clean_accuracy, measured.n_examples)
        difference = abs(measured.clean_accuracy - card.claimed.clean_accuracy)
        return (
            difference <= tolerance,
            f"measured {100 * measured.clean_accuracy:.2f}% on {measured.n_examples} test images, claimed "
            f"{100 * card.claimed.clean_accuracy:.2f}% (tolerance {100 * tolerance:.2f} points)",
            measured,
        )

    if (measured := step("clean accuracy", clean_accuracy)) is None:
        return report

    def learned():
        chance = chance_note(measured.clean_accuracy, measured.n_examples, dataset_info(card.dataset).num_classes)
        return chance is None, chance or "well above chance", True

    if step("learned", learned) is None:
        return report

    def sanity_attack():
        attacked = benchmark(
            model, attack="pgd", n_examples=attack_examples, seed=seed, data_dir=data_dir, overrides={"checks": True}, progress=progress
        )
        lowered = attacked.robust_accuracy < attacked.clean_accuracy
        detail = (
            f"PGD-10 at eps {attacked.eps:.4g}: clean {100 * attacked.clean_accuracy:.1f}%, robust "
            f"{100 * attacked.robust_accuracy:.1f}% on {attacked.n_examples} images; "
            f"flags: {', '.join(attacked.flags) or 'none'}"
        )
        return lowered and not attacked.flags, detail, attacked

    step("attack sanity and reliability flags", sanity_attack)
    return report
