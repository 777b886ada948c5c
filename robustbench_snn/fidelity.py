"""Whether our copy of a published defence is the paper's defence, judged from stored rows.

A defence's card records what its paper reports (`registry.cards.ReportedField`: the number, the
evaluation, the eps, its undefended SNN's number under the same evaluation, where it says so). Our
copy is run under the paper's own evaluation (the card's ``reference.protocol``) at the paper's
eps, and:

- where the paper reports our dataset, the copy is faithful when its number lies within
  `TOLERANCE_POINTS` of the paper's, widened by our number's 95% interval: training runs of one
  recipe differ by a few points, and what a paper leaves unsaid (epochs, initialisation) by more;
- elsewhere no number can be compared, so the paper's claimed gain over its undefended SNN must be
  reproduced by ours over our undefended SNN (the card's ``baseline_model``), under the same
  evaluation at the same eps: same sign, and within a factor `GAIN_FACTOR` of its size.

A copy that fails is not the paper's defence, so how far its paper's evaluation overstates it says
nothing about the paper; the leaderboard then shows no "overstated by" for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace

from robustbench_snn.tables import clopper_pearson

TOLERANCE_POINTS = 5.0
GAIN_FACTOR = 3.0

REPRODUCED, NOT_REPRODUCED, NOT_MEASURED = "reproduced", "not reproduced", "not measured"


@dataclass(frozen=True)
class Fidelity:
    """The verdict on one copy: by which rule (``number`` or ``gain``), the paper's value and ours
    in points (None where not measured), the tolerance used, and why, in a sentence; and the copy's
    robust accuracy under the paper's evaluation at the paper's eps, in percent (None without a row)."""

    verdict: str
    rule: str
    paper: float | None
    ours: float | None
    tolerance: str
    reason: str
    copy_robust: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def latest_row(rows: Iterable[Mapping], model: str, protocol: str, eps: float) -> Mapping | None:
    """The newest row of ``model`` under ``protocol`` at Linf ``eps``."""
    matching = [
        row
        for row in rows
        if row["model"] == model and row["protocol"] == protocol and row.get("norm", "Linf") == "Linf" and abs(row["eps"] - eps) < 1e-9
    ]
    return max(matching, key=lambda row: str(row.get("timestamp", ""))) if matching else None


def fidelity(card, rows: Iterable[Mapping]) -> Fidelity | None:
    """The verdict on ``card``'s copy from ``rows`` (the dataset's stored rows); None for a card
    that records no paper's number."""
    reported = card.reference.reported
    if reported is None or card.reference.protocol is None:
        return None
    rows = list(rows)
    protocol, eps = card.reference.protocol, reported.eps
    ours = latest_row(rows, card.name, protocol, eps)
    copy_robust = None if ours is None else round(100 * ours["robust_accuracy"], 2)
    if reported.robust_accuracy is None:
        rule = "number" if reported.dataset == card.dataset else "gain"
        verdict = Fidelity(NOT_MEASURED, rule, None, None, "", "the paper's number could not be read here")
    elif reported.dataset == card.dataset:
        verdict = _same_dataset(reported, ours, protocol)
    else:
        baseline = latest_row(rows, reported.baseline_model, protocol, eps) if reported.baseline_model else None
        verdict = _gain(reported, ours, baseline, protocol)
    return replace(verdict, copy_robust=copy_robust)


def _same_dataset(reported, ours: Mapping | None, protocol: str) -> Fidelity:
    paper = 100 * reported.robust_accuracy
    if ours is None:
        return Fidelity(NOT_MEASURED, "number", paper, None, "", f"no row of {protocol} at eps {reported.eps:.4g}")
    accuracy, n = ours["robust_accuracy"], int(ours["n_examples"])
    low, high = clopper_pearson(round(accuracy * n), n)
    slack = TOLERANCE_POINTS + 100 * max(accuracy - low, high - accuracy)
    distance = 100 * accuracy - paper
    verdict = REPRODUCED if abs(distance) <= slack else NOT_REPRODUCED
    reason = f"ours {100 * accuracy:.1f}% against the paper's {paper:.1f}% ({distance:+.1f} points; tolerance {slack:.1f})"
    return Fidelity(verdict, "number", paper, round(100 * accuracy, 2), f"{slack:.1f} points", reason)


def _gain(reported, ours: Mapping | None, baseline: Mapping | None, protocol: str) -> Fidelity:
    if reported.baseline_robust_accuracy is None or reported.baseline_model is None:
        return Fidelity(NOT_MEASURED, "gain", 100 * reported.robust_accuracy, None, "", "the paper's undefended number is not recorded")
    paper = 100 * (reported.robust_accuracy - reported.baseline_robust_accuracy)
    if ours is None or baseline is None:
        missing = reported.baseline_model if ours is not None else "the copy"
        return Fidelity(NOT_MEASURED, "gain", round(paper, 2), None, "", f"no row of {missing} under {protocol} at eps {reported.eps:.4g}")
    gain = 100 * (ours["robust_accuracy"] - baseline["robust_accuracy"])
    same_sign = gain * paper > 0
    in_size = same_sign and 1 / GAIN_FACTOR <= gain / paper <= GAIN_FACTOR
    verdict = REPRODUCED if in_size else NOT_REPRODUCED
    reason = f"gain over {reported.baseline_model}: ours {gain:+.1f} points against the paper's {paper:+.1f} over its undefended SNN" + (
        "" if same_sign else " (opposite sign)" if gain else " (none)"
    )
    return Fidelity(verdict, "gain", round(paper, 2), round(gain, 2), f"same sign, within a factor {GAIN_FACTOR:g}", reason)
