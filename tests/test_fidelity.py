"""The fidelity verdict on a published defence's copy, computed from stored rows: the paper's own number where it reports our
dataset, its gain over its undefended SNN elsewhere."""

import pytest

from robustbench_snn.fidelity import NOT_MEASURED, NOT_REPRODUCED, REPRODUCED, fidelity
from robustbench_snn.registry import find_card
from robustbench_snn.registry.cards import ReportedField

PAPER_EPS = 8 / 255


def with_reported(name: str, **reported) -> object:
    card = find_card(name)
    fields = {"source": "Table 1, row 'X'", "eps": PAPER_EPS, "attack": "PGD-7", "differences": "none", **reported}
    return card.model_copy(update={"reference": card.reference.model_copy(update={"reported": ReportedField(**fields)})})


def row(model: str, protocol: str, robust: float, eps: float = PAPER_EPS, n: int = 1000) -> dict:
    return {"model": model, "protocol": protocol, "eps": eps, "norm": "Linf", "robust_accuracy": robust, "n_examples": n, "timestamp": "t"}


def test_a_copy_is_faithful_when_it_lands_within_the_tolerance_of_the_papers_number_on_our_dataset():
    card = with_reported("fmnist_hosnn", dataset="fashion-mnist", robust_accuracy=0.7491)
    passing = fidelity(card, [row("fmnist_hosnn", "paper-hosnn", 0.72)])
    assert passing.verdict == REPRODUCED and passing.rule == "number" and passing.ours == passing.copy_robust == 72.0
    failing = fidelity(card, [row("fmnist_hosnn", "paper-hosnn", 0.33)])
    assert failing.verdict == NOT_REPRODUCED and "-41.9 points" in failing.reason
    # only the paper's eps counts: a row at the threat model's eps is another evaluation
    assert fidelity(card, [row("fmnist_hosnn", "paper-hosnn", 0.7491, eps=0.1)]).verdict == NOT_MEASURED
    # the newest row of the configuration is the one judged
    newer = {**row("fmnist_hosnn", "paper-hosnn", 0.33), "timestamp": "u"}
    assert fidelity(card, [row("fmnist_hosnn", "paper-hosnn", 0.72), newer]).verdict == NOT_REPRODUCED


def test_the_tolerance_widens_with_the_uncertainty_of_a_small_run():
    card = with_reported("fmnist_hosnn", dataset="fashion-mnist", robust_accuracy=0.50)
    assert fidelity(card, [row("fmnist_hosnn", "paper-hosnn", 0.40, n=1000)]).verdict == NOT_REPRODUCED
    assert fidelity(card, [row("fmnist_hosnn", "paper-hosnn", 0.40, n=50)]).verdict == REPRODUCED


def test_on_another_dataset_the_papers_gain_over_its_undefended_snn_must_be_reproduced_in_sign_and_rough_size():
    card = with_reported(
        "fmnist_snn_rat", dataset="cifar10", robust_accuracy=0.25, baseline_robust_accuracy=0.05, baseline_model="fmnist_snn_direct"
    )
    paper_gain = 20.0
    holding = fidelity(card, [row("fmnist_snn_rat", "paper-snn-rat", 0.40), row("fmnist_snn_direct", "paper-snn-rat", 0.15)])
    assert holding.verdict == REPRODUCED and holding.rule == "gain" and holding.paper == pytest.approx(paper_gain)
    assert holding.ours == pytest.approx(25.0) and holding.copy_robust == 40.0
    reversed_gain = fidelity(card, [row("fmnist_snn_rat", "paper-snn-rat", 0.10), row("fmnist_snn_direct", "paper-snn-rat", 0.15)])
    assert reversed_gain.verdict == NOT_REPRODUCED and "opposite sign" in reversed_gain.reason
    tiny_gain = fidelity(card, [row("fmnist_snn_rat", "paper-snn-rat", 0.16), row("fmnist_snn_direct", "paper-snn-rat", 0.15)])
    assert tiny_gain.verdict == NOT_REPRODUCED, "a gain twenty times smaller than the paper's is not the paper's defence"
    no_baseline_row = fidelity(card, [row("fmnist_snn_rat", "paper-snn-rat", 0.40)])
    assert no_baseline_row.verdict == NOT_MEASURED and "fmnist_snn_direct" in no_baseline_row.reason


def test_a_card_without_a_papers_number_has_no_verdict_and_a_reported_number_needs_its_evaluation():
    assert fidelity(find_card("fmnist_ann"), []) is None, "not a published defence: nothing to check"
    unread = fidelity(find_card("fmnist_poisson_lowlat"), [row("fmnist_poisson_lowlat", "paper-sharmin2020", 0.3)])
    assert unread.verdict == NOT_MEASURED and "could not be read" in unread.reason and unread.paper is None
    assert unread.copy_robust == 30.0, "our copy's number at the paper's eps is shown even without the paper's"
    assert fidelity(find_card("fmnist_hosnn"), []).verdict == NOT_MEASURED
    with pytest.raises(ValueError, match="needs the preset of its evaluation"):
        card = find_card("fmnist_ann")
        reported = ReportedField(source="x", dataset="fashion-mnist", eps=0.1, attack="pgd", robust_accuracy=0.5, differences="x")
        type(card.reference).model_validate({**card.reference.model_dump(), "reported": reported.model_dump()})


def test_the_leaderboard_shows_how_far_a_papers_evaluation_overstates_only_a_copy_that_reproduces_the_paper():
    from robustbench_snn.fidelity import Fidelity
    from robustbench_snn.leaderboard import _paper_comparison

    card = find_card("fmnist_hosnn")
    rows = {
        protocol: {"protocol": protocol, "robust_accuracy": robust, "n_examples": 1000, "protocol_version": version}
        for protocol, robust, version in (("paper-hosnn", 0.33, 2), ("reliable", 0.036, 7))
    }
    faithful = Fidelity(REPRODUCED, "number", 74.91, 72.0, "7.8 points", "ours 72.0% against the paper's 74.9%")
    unfaithful = Fidelity(NOT_REPRODUCED, "number", 74.91, 33.0, "7.9 points", "ours 33.0% against the paper's 74.9%")
    assert _paper_comparison(card, rows, faithful)["overstated_by"] == "+29.4"
    shown = _paper_comparison(card, rows, unfaithful)
    assert shown["overstated_by"] == "-" and shown["fidelity"] == NOT_REPRODUCED and "33.0%" in shown["fidelity_reason"]
    assert _paper_comparison(card, rows, None)["fidelity"] == "not recorded"
