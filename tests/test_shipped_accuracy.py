"""Shipped models reach the clean accuracy their cards claim, re-measured on the full test split."""

import pytest

from robustbench_snn import benchmark
from robustbench_snn.registry import list_cards

# Deterministic models must reproduce their claim closely; stochastic ones are evaluated with the
# same seed, so only a change of platform or library version can move them.
TOLERANCE = {False: 0.003, True: 0.005}


@pytest.mark.slow
@pytest.mark.parametrize("card", [card for card in list_cards("fashion-mnist") if card.claimed], ids=lambda card: card.name)
def test_shipped_model_reaches_its_claimed_clean_accuracy(card, shipped_models):
    model = shipped_models[card.name]
    record = benchmark(model, dataset=card.dataset, n_examples=card.claimed.n_examples, seed=card.claimed.seed)
    assert record.n_examples == card.claimed.n_examples == 10000
    assert abs(record.clean_accuracy - card.claimed.clean_accuracy) <= TOLERANCE[card.stochastic]
