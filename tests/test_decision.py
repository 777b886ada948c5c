"""Deciding a stochastic model's answer by a sequential test: its stated errors hold, its verdict does
not depend on how often an input is decided, it stops early far from the thresholds, and a protocol
that uses it decides its clean inputs, members and checks by it."""

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from robustbench_snn import benchmark, load_model
from robustbench_snn.attacks import Protocol, build_protocol, decide
from robustbench_snn.attacks.decision import SequentialDecision

TEST = SequentialDecision(right_at=0.1, wrong_at=0.25, alpha=0.01, beta=0.01)


class Coin(nn.Module):
    """Two classes; on an input whose first pixel is p, one draw answers class 1 (wrong for label 0) with probability p."""

    stochastic = True

    def __init__(self) -> None:
        super().__init__()
        self.generator = torch.Generator().manual_seed(0)
        self.forwards = 0

    def seed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.forwards += len(images)
        wrong = torch.rand(len(images), generator=self.generator) < images[:, 0]
        return torch.stack([(~wrong).float(), wrong.float()], dim=1)


def _inputs(p: float, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.full((count, 1), p), torch.zeros(count, dtype=torch.long)


@pytest.mark.parametrize(
    ("p", "decided_wrong_at_most", "decided_wrong_at_least"),
    [(0.0, 0, 0), (0.05, 0.02, 0), (0.1, 0.02, 0), (0.25, 1, 0.97), (0.5, 1, 0.99), (1.0, 1, 1)],
)
def test_the_stated_errors_hold(p, decided_wrong_at_most, decided_wrong_at_least):
    # 2,000 inputs: an error rate of 0.01 shows as at most 0.02 with probability well above 0.999.
    images, labels = _inputs(p, 2000)
    share_wrong = float((~decide(Coin(), images, labels, TEST)).float().mean())
    assert decided_wrong_at_least <= share_wrong <= decided_wrong_at_most


def test_the_verdict_does_not_depend_on_how_often_an_input_is_decided():
    images, labels = _inputs(0.05, 1000)
    wrong_at_05 = torch.cat([images, torch.full((1000, 1), 0.5)])
    labels = torch.cat([labels, labels])
    model = Coin()
    verdicts = [decide(model, wrong_at_05, labels, TEST) for _ in range(3)]
    assert all(float((verdict == verdicts[0]).float().mean()) >= 0.98 for verdict in verdicts[1:])
    # The four-draw rule on inputs near its own threshold (one draw wrong with probability 0.16) flips about half of them.
    near, near_labels = _inputs(0.16, 1000)
    four = [decide(model, near, near_labels, 4) for _ in range(2)]
    assert float((four[0] == four[1]).float().mean()) < 0.7


def test_it_stops_early_far_from_its_thresholds_and_decides_the_undecided_by_their_share():
    model = Coin()
    images, labels = _inputs(0.0, 100)
    decide(model, images, labels, TEST)
    assert model.forwards <= 100 * 32, "an input never wrong is decided right within a few chunks"
    model, undecided = Coin(), SequentialDecision(right_at=0.1, wrong_at=0.25, alpha=1e-9, beta=1e-9, max_draws=16)
    images, labels = _inputs(0.2, 500)
    verdict = decide(model, images, labels, undecided)
    assert model.forwards == 500 * 16, "undecided after max_draws: each input drawn exactly max_draws times"
    assert 0.3 < float((~verdict).float().mean()) < 0.7, "then decided by its share against the midpoint, 0.175"


def test_a_deterministic_model_is_decided_by_one_forward():
    model = load_model("fmnist_ann")
    images = torch.rand(4, 1, 28, 28)
    labels = model(images).argmax(1)
    assert decide(model, images, labels, TEST).all()


def test_a_test_with_its_thresholds_in_the_wrong_order_is_refused():
    with pytest.raises(ValidationError, match="right_at"):
        SequentialDecision(right_at=0.3, wrong_at=0.2)


def test_a_protocol_decides_by_it_and_records_it_while_protocols_without_it_keep_their_identity():
    assert "sequential" not in build_protocol("pgd").model_dump(), "a protocol without it serialises as before"
    protocol = Protocol(name="pgd-sequential", members=build_protocol("pgd").members, sequential=TEST)
    assert protocol.rule() is protocol.sequential
    record = benchmark(load_model("fmnist_snn_poisson"), dataset="fashion-mnist", attack=protocol, n_examples=16, seed=0)
    assert record.params["sequential"]["wrong_at"] == 0.25 and record.robust_accuracy <= record.clean_accuracy
    assert record.clean_accuracy_one_draw is not None
