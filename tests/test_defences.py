"""The published defences of the registry: each card names its paper's evaluation, and the
evaluation finds what each defence is (stochastic or not, its gradients usable) on the real model."""

import pytest

from robustbench_snn import benchmark, load_model
from robustbench_snn.attacks import build_protocol
from robustbench_snn.models.interface import is_stochastic
from robustbench_snn.registry import list_cards

DEFENCES = [card for card in list_cards("fashion-mnist") if card.reference.protocol]
# What each defence's mechanism makes it: stochastic where its coding samples or its neurons fire noisily.
STOCHASTIC = {"fmnist_poisson_lowlat": True, "fmnist_snn_rat": False, "fmnist_hosnn": False, "fmnist_tgo": True, "fmnist_feel": False}


def test_the_registry_holds_the_reproduced_defences():
    assert {card.name for card in DEFENCES} == set(STOCHASTIC)


@pytest.mark.parametrize("card", DEFENCES, ids=[card.name for card in DEFENCES])
def test_a_defence_is_detected_for_what_it_is_under_its_papers_protocol(card):
    model = load_model(card.name)
    assert is_stochastic(model) == STOCHASTIC[card.name]
    record = benchmark(model, attack=card.reference.protocol, n_examples=16, seed=0)
    assert record.params["name"] == card.reference.protocol and build_protocol(card.reference.protocol).version == 1
    # A paper that attacks a stochastic model with single-draw gradients is told so; no gradient vanishes.
    assert ("stochastic_without_eot" in record.flags) == STOCHASTIC[card.name]
    assert set(record.flag_details["zero_gradient_share"].values()) == {0.0}
    assert 0 <= record.robust_accuracy <= record.clean_accuracy
