"""Outside evaluations: an attack anyone submits, tested against a stored official number.

An official row of the ranking protocol records its survivors (the samples it counts robust). A
submitted attack (a preset, or an attack a plug-in package registers) runs on exactly those test
images, with the row's seed, after its members are checked to stay in the row's threat model
(norm, eps). Its inputs are checked to lie in that ball and in [0, 1], and each input that fools
the model is decided again on a freshly loaded copy of the registered model with fresh draws, by the
row's decision rule: neither a lucky draw nor an attack that tampers with the model it was handed
can lower a number. When kills hold, the evaluation is stored beside the audits
(``outside/<dataset>.jsonl``): the leaderboard shows the lower figure with its attribution and
marks the model until `reliable` reaches it, and `rsc-bench audit` runs the attack beside its own
suite. An attack that breaks nothing stores nothing.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from robustbench_snn.attacks import attack_batch, build_protocol
from robustbench_snn.attacks.decision import SequentialDecision
from robustbench_snn.attacks.protocol import AttackSpec, Protocol
from robustbench_snn.attacks.runner import decide
from robustbench_snn.data import dataset_info, first_examples, load_dataset
from robustbench_snn.errors import UserError
from robustbench_snn.evaluation.calibrate import calibrated_members
from robustbench_snn.evaluation.plan import plan_members
from robustbench_snn.models.interface import is_stochastic, reseed
from robustbench_snn.provenance import stamp
from robustbench_snn.seeds import batch_seed, redecision_seed
from robustbench_snn.store import append_outside, load_outside, load_rows
from robustbench_snn.tables import RANKING_PROTOCOL, is_official

logger = logging.getLogger(__name__)

# An input may leave the ball or [0, 1] by this much (float rounding of a projection), no more.
BALL_TOLERANCE = 1e-5


@dataclass
class OutsideEvaluation:
    """A submitted attack against one official row: what it broke, and the number it leaves."""

    model: str
    dataset: str
    protocol: str
    protocol_version: int | None
    row_timestamp: str
    attack: str
    members: list[dict]
    submitted_by: str
    url: str | None
    norm: str
    eps: float
    seed: int
    n_examples: int
    survivors: int
    kills: int
    broken: list[int]
    robust_accuracy_row: float
    robust_accuracy: float
    seconds: float
    components: dict
    code_version: str
    versions: dict
    git_commit: str
    timestamp: str

    @property
    def lowered(self) -> bool:
        """Whether kills held on the fresh decision, so the number is lower than the row's."""
        return bool(self.broken)

    def as_dict(self) -> dict:
        return asdict(self)


def official_row(model: str, dataset: str, results_dir: str | os.PathLike | None = None) -> dict:
    """The newest official row of the ranking protocol for ``model`` at the dataset's threat model (Linf, its eps)."""
    rows = load_rows(dataset, results_dir)
    eps = dataset_info(dataset).linf_eps
    candidates = (
        []
        if rows.empty
        else [
            row
            for row in rows[(rows["model"] == model) & (rows["protocol"] == RANKING_PROTOCOL)].to_dict("records")
            if is_official(row) and row.get("norm") == "Linf" and abs((row.get("eps") or 0) - eps) < 1e-9
        ]
    )
    if not candidates:
        raise UserError(f"{model} has no official {RANKING_PROTOCOL} row on {dataset} to test (rsc-bench results --model {model})")
    row = max(candidates, key=lambda candidate: candidate["timestamp"])
    if not isinstance(row.get("survivors"), list):
        raise UserError(
            f"the official {RANKING_PROTOCOL} row of {model} ({row['timestamp'][:10]}) predates stored survivors, so no attack can be "
            f"tested on the samples it counts robust until it is recomputed; to test yours now, make such a row in a folder of "
            f"yours (rsc-bench evaluate --model {model} --attack {RANKING_PROTOCOL} --results-dir DIR, the full preset) and pass "
            "--results-dir DIR here"
        )
    return row


def _submitted_protocol(attack: str, row: dict, attacks_dir: str | os.PathLike | None) -> Protocol:
    """The submitted attack as a protocol, refused unless every member stays in the row's threat model."""
    protocol = build_protocol(attack, directory=attacks_dir).resolved(dataset_info(row["dataset"]))
    members = [*protocol.members, *protocol.later_members]
    if not any(member.attack for member in members):
        raise UserError(f"{attack!r} has no attack member")
    for member in members:
        if member.norm != row["norm"] or member.eps > row["eps"] + 1e-12:
            raise UserError(
                f"{member.label()} attacks in {member.norm} eps {member.eps:g}, outside the row's threat model "
                f"({row['norm']} eps {row['eps']:g}): an outside evaluation must attack the same ball"
            )
    return protocol


def _row_rule(row: dict) -> int | SequentialDecision:
    """How the row decided a stochastic model's answers: its sequential test, else its number of draws."""
    sequential = (row.get("params") or {}).get("sequential")
    return SequentialDecision.model_validate(sequential) if sequential else int(row.get("eval_draws") or 1)


def _check_in_ball(adversarial: torch.Tensor, clean: torch.Tensor, norm: str, eps: float, attack: str) -> None:
    """Refuse inputs outside [0, 1] or outside the ``norm`` ball of radius ``eps`` around ``clean``."""
    if not torch.isfinite(adversarial).all() or adversarial.shape != clean.shape:
        raise UserError(f"{attack} returned inputs that are not finite images of the clean inputs' shape; nothing was stored")
    low, high = float(adversarial.min()), float(adversarial.max())
    if low < -BALL_TOLERANCE or high > 1 + BALL_TOLERANCE:
        raise UserError(f"{attack} returned pixels outside [0, 1] ([{low:g}, {high:g}]); nothing was stored")
    order = {"Linf": float("inf"), "L2": 2.0, "L1": 1.0}[norm]
    largest = float((adversarial - clean).flatten(1).norm(p=order, dim=1).max()) if len(clean) else 0.0
    if largest > eps * (1 + BALL_TOLERANCE) + BALL_TOLERANCE:
        raise UserError(f"{attack} moved an input {largest:.4g} in {norm}, beyond the threat model's eps {eps:g}; nothing was stored")


def _fresh_decision(
    fresh: nn.Module, adversarial: torch.Tensor, labels: torch.Tensor, rule: int | SequentialDecision, seed: int
) -> torch.Tensor:
    """Which of ``adversarial`` ``fresh`` (a copy of the registered model the attack never saw) gets wrong, on fresh draws."""
    if is_stochastic(fresh):
        reseed(fresh, redecision_seed(seed))
    return ~decide(fresh, adversarial, labels, rule)


def run_outside_attack(
    model: str,
    attack: str,
    submitted_by: str,
    *,
    dataset: str = "fashion-mnist",
    url: str | None = None,
    results_dir: str | os.PathLike | None = None,
    attacks_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    store: bool = True,
    batch_size: int = 128,
) -> OutsideEvaluation:
    """Run ``attack`` on the samples the official ranking row of ``model`` counts robust and, when
    its kills hold on a fresh decision, store the evaluation in ``results_dir`` (with ``store``)."""
    from robustbench_snn.registry import load_model

    if not submitted_by.strip():
        raise UserError("say who submits the attack (--by): the leaderboard credits it")
    row = official_row(model, dataset, results_dir)
    protocol = _submitted_protocol(attack, row, attacks_dir)
    examples = first_examples(load_dataset(dataset, "test", data_dir), row["n_examples"])
    survivors = sorted(row["survivors"])
    if any(not 0 <= position < len(examples) for position in survivors):
        raise UserError(f"the official row of {model} lists survivors outside its {row['n_examples']} images")
    # Two copies: the attack is handed one; kills are decided on the other, which it never touches.
    attacked, fresh = load_model(model), load_model(model)
    images = torch.stack([examples[position][0] for position in survivors]) if survivors else torch.zeros(0)
    labels = torch.tensor([int(examples[position][1]) for position in survivors], dtype=torch.long)
    rule = _row_rule(row)
    deciding = Protocol.deciding(
        protocol.name, rule, members=protocol.members, later_members=protocol.later_members, search_on=protocol.search_on
    )
    started = time.perf_counter()
    kills, broken = 0, []
    if survivors:
        members, sources, skipped = plan_members(attacked, protocol, images[:1], "cpu", row["seed"], dataset)
        if skipped or not members:
            raise UserError(f"{attack} cannot run on {model}: {'; '.join(skipped) or 'no member applies'}")
        members, _ = calibrated_members(attacked, members, dataset, data_dir, row["n_examples"], deciding, row["seed"], sources)
        for start in range(0, len(survivors), batch_size):
            clean, truth = images[start : start + batch_size], labels[start : start + batch_size]
            try:
                outcome = attack_batch(
                    attacked,
                    deciding,
                    members,
                    clean.clone(),
                    truth.clone(),
                    batch_seed(row["seed"], start // batch_size),
                    sources,
                    count_gradients=False,
                    keep_adversarial=True,
                )
            except UserError:
                raise
            except Exception as error:  # a submitted attack is untrusted code: its failure is the submission's, not ours
                raise UserError(f"{attack} failed on {model}: {type(error).__name__}: {error}; nothing was stored") from None
            fooled = ~torch.tensor(outcome.robust, dtype=torch.bool) & torch.tensor(outcome.clean, dtype=torch.bool)
            if fooled.any():
                _check_in_ball(outcome.adversarial[fooled], clean[fooled], row["norm"], row["eps"], attack)
                kills += int(fooled.sum())
                wrong = _fresh_decision(fresh, outcome.adversarial[fooled].detach(), truth[fooled], rule, row["seed"])
                positions = [survivors[start + index] for index in fooled.nonzero().squeeze(1).tolist()]
                broken += [position for position, holds in zip(positions, wrong.tolist()) if holds]
    evaluation = OutsideEvaluation(
        model=model,
        dataset=dataset,
        protocol=RANKING_PROTOCOL,
        protocol_version=(row.get("params") or {}).get("version"),
        row_timestamp=row["timestamp"],
        attack=attack,
        members=[member.model_dump(mode="json", exclude_defaults=True) for member in [*protocol.members, *protocol.later_members]],
        submitted_by=submitted_by.strip(),
        url=url,
        norm=row["norm"],
        eps=row["eps"],
        seed=row["seed"],
        n_examples=row["n_examples"],
        survivors=len(survivors),
        kills=kills,
        broken=sorted(broken),
        robust_accuracy_row=row["robust_accuracy"],
        robust_accuracy=(len(survivors) - len(broken)) / row["n_examples"],
        seconds=round(time.perf_counter() - started, 3),
        **stamp(),
    )
    if store and evaluation.lowered:
        append_outside(evaluation.as_dict(), results_dir)
    return evaluation


def outside_members(dataset: str, results_dir: str | os.PathLike | None = None) -> list[AttackSpec]:
    """The members of every stored outside attack of ``dataset`` that lowered a number, once each, for
    the audit's suite; one whose attack is not installed here is left out with a warning."""
    members: dict[str, AttackSpec] = {}
    for evaluation in load_outside(dataset, results_dir):
        for fields in evaluation.get("members", []):
            try:
                member = AttackSpec.model_validate(fields)
            except (UserError, ValueError) as error:
                logger.warning(
                    "the outside attack %s by %s cannot run here (%s)", evaluation.get("attack"), evaluation.get("submitted_by"), error
                )
                continue
            members.setdefault(member.label(), member)
    return list(members.values())


__all__ = ["OutsideEvaluation", "official_row", "outside_members", "run_outside_attack"]
