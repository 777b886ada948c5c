"""The published defences of the registry: each card names its paper's evaluation, and the
evaluation finds what each defence is (stochastic or not, its gradients usable) on the real model."""

import pytest

from robustbench_snn import benchmark, load_model
from robustbench_snn.attacks import build_protocol
from robustbench_snn.models.interface import is_stochastic
from robustbench_snn.registry import list_cards

DEFENCES = [card for card in list_cards("fashion-mnist") if card.reference.protocol]
# What each defence's mechanism makes it: stochastic where its coding samples or its neurons fire noisily.
STOCHASTIC = {
    "fmnist_poisson_lowlat": True,
    "fmnist_snn_rat": False,
    "fmnist_hosnn": False,
    "fmnist_hosnn_paper": False,
    "fmnist_tgo": True,
    "fmnist_feel": False,
    "fmnist_sr": False,
}


def test_the_registry_holds_the_reproduced_defences():
    assert {card.name for card in DEFENCES} == set(STOCHASTIC)


@pytest.mark.parametrize("card", DEFENCES, ids=[card.name for card in DEFENCES])
def test_a_defence_is_detected_for_what_it_is_under_its_papers_protocol(card):
    model = load_model(card.name)
    assert is_stochastic(model) == STOCHASTIC[card.name]
    record = benchmark(model, attack=card.reference.protocol, n_examples=16, seed=0)
    assert record.params["name"] == card.reference.protocol and record.params["version"] == build_protocol(card.reference.protocol).version
    # A paper that attacks a stochastic model with single-draw gradients is told so; no gradient vanishes.
    assert ("stochastic_without_eot" in record.flags) == STOCHASTIC[card.name]
    assert set(record.flag_details["zero_gradient_share"].values()) == {0.0}
    assert 0 <= record.robust_accuracy <= record.clean_accuracy


# Each paper preset against the evaluation its paper (or its authors' code) runs: the members (attack, steps, step as a
# fraction of eps, random start), no EOT and one forward deciding, and the step at the paper's own eps.
PAPER_SETTINGS = {
    "paper-hosnn": {
        "source": "HoSNN authors' code, github.com/HHHHHejia/HoSNNs tools/attack.py: FGSM; PGD 7 steps of eps/3, no random start",
        "members": [("fgsm", None, None, None), ("pgd", 7, 1 / 3, False)],
        "paper_eps": 8 / 255,
        "paper_step": (8 / 255) / 3,
    },
    "paper-snn-rat": {
        "source": "SNN-RAT authors' code, github.com/putshua/SNN-RAT main_test.py: PGD 7 steps of 2.55/255 at 8/255, random start",
        "members": [("fgsm", None, None, None), ("pgd", 7, 0.319, True)],
        "paper_eps": 8 / 255,
        "paper_step": 2.55 / 255,
    },
    "paper-tgo": {
        "source": "SNN-RAT's evaluation, whose table TGO (arXiv 2602.20548) extends; TGO's own step is not published",
        "members": [("fgsm", None, None, None), ("pgd", 7, 0.319, True)],
        "paper_eps": 8 / 255,
        "paper_step": 2.55 / 255,
    },
    "paper-feel": {
        "source": "FEEL-SNN (NeurIPS 2024) Table 1: eps 8/255, PGD k=7, alpha 0.01, random start; BIM the same steps from the clean input",
        "members": [("fgsm", None, None, None), ("pgd", 7, 0.319, True), ("pgd", 7, 0.319, False)],
        "paper_eps": 8 / 255,
        "paper_step": 0.01,
    },
    "paper-sr": {
        "source": "SR authors' code, github.com/putshua/gradient_reg_defense utils.py val_ensemble and config.json: FGSM and PGD-10 of "
        "2.55/255 at 8/255 (torchattacks, random start), each through the ZIF/triangle, sigmoid and atan surrogates and BPTR",
        "members": [("fgsm", None, None, None)] * 4 + [("pgd", 10, 0.319, True)] * 4,
        "paper_eps": 8 / 255,
        "paper_step": 2.55 / 255,
    },
    "paper-sharmin2020": {
        "source": "Sharmin et al.'s code, github.com/ssharmin/spikingNN-adversarial-attack: PGD 7 steps of 2/255 at 8/255, random start",
        "members": [("fgsm", None, None, None), ("pgd", 7, 0.25, True)],
        "paper_eps": 8 / 255,
        "paper_step": 2 / 255,
    },
}


@pytest.mark.parametrize("preset", sorted(PAPER_SETTINGS))
def test_each_paper_preset_runs_its_papers_evaluation_at_any_eps(preset):
    from robustbench_snn.attacks.methods.pgd import step_size_of

    paper = PAPER_SETTINGS[preset]
    protocol = build_protocol(preset, {"eps": paper["paper_eps"]})
    assert all(member.eot == 1 for member in protocol.members) and protocol.eval_draws == 1 and not protocol.later_members, paper["source"]
    found = [
        (
            member.attack,
            member.steps if member.attack == "pgd" else None,
            member.step_ratio,
            member.random_start if member.attack == "pgd" else None,
        )
        for member in protocol.members
    ]
    assert [(attack, steps, random) for attack, steps, _, random in found] == [
        (attack, steps, random) for attack, steps, _, random in paper["members"]
    ], paper["source"]
    for member, (_, steps, ratio, _) in zip(protocol.members, paper["members"]):
        if steps is not None:
            assert member.step_ratio == pytest.approx(ratio, rel=0.01), paper["source"]
            assert step_size_of(member, member.steps) == pytest.approx(paper["paper_step"], rel=0.01), "the paper's step at the paper's eps"


def test_a_defence_card_records_its_papers_number_with_its_evaluation_and_where_it_says_so():
    reported = {card.name: card.reference.reported for card in DEFENCES if card.reference.reported is not None}
    assert reported["fmnist_hosnn"].dataset == "fashion-mnist" and reported["fmnist_hosnn"].robust_accuracy == pytest.approx(0.7491)
    for name, numbers in reported.items():
        assert numbers.source and numbers.differences and numbers.attack, name
        if numbers.robust_accuracy is None:
            assert "could not be read" in numbers.source, f"{name}: a card without the paper's number says why"
        elif numbers.dataset != "fashion-mnist":
            assert numbers.baseline_robust_accuracy is not None and numbers.baseline_model in {card.name for card in list_cards()}, name
