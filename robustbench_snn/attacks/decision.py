"""Deciding a stochastic model's answer on one input: by a fixed number of draws, or by a sequential test with a stated error.

The default rule (`runner.decide`) counts an input correct only if the model is right on every one
of ``eval_draws`` encoder draws. Its verdict is itself a sample: an input the model gets wrong on
a share p of its draws is called wrong with probability 1 - (1 - p)^m, so deciding the same input
again changes the answer near the boundary, and a protocol whose many members each get one
decision per candidate collects such inputs by chance (issue 40: on the zoo's sampled codings
most of `reliable` v7's later kills did not hold when decided again).

`SequentialDecision` decides instead whether p, the probability that one draw is wrong, is at least
``wrong_at`` or at most ``right_at``, with Wald's sequential probability ratio test: draws are
taken in chunks until the log-likelihood ratio of the two leaves the test's bounds. An input wrong on
at least ``wrong_at`` of its draws is decided wrong with probability at least ``1 - beta``; one
wrong on at most ``right_at`` of its draws is decided wrong with probability at most ``alpha``
(Wald's bounds; checking the bounds once per chunk only overshoots them, which keeps the errors at
most these). An input still undecided after ``max_draws`` is decided by its observed share against
the midpoint of the two. So the verdict on an input no longer depends on how often it is decided,
except within the indifference zone between ``right_at`` and ``wrong_at``, and a protocol whose
candidates each get one decision falsely kills a sample whose every candidate is wrong on at most
``right_at`` of draws with probability at most ``alpha`` times its decisions.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field, model_validator
from torch import nn

from robustbench_snn.attacks.primitives import draw_chunks, repeated
from robustbench_snn.config import Strict


class SequentialDecision(Strict):
    """Wald's test of "one draw is wrong with probability >= ``wrong_at``" against "<= ``right_at``"."""

    right_at: float = Field(gt=0, lt=1, description="A draw-error rate at most this is decided right with probability >= 1 - alpha.")
    wrong_at: float = Field(gt=0, lt=1, description="A draw-error rate at least this is decided wrong with probability >= 1 - beta.")
    alpha: float = Field(default=1e-4, gt=0, lt=0.5, description="Most probability of deciding wrong an input at most right_at.")
    beta: float = Field(default=0.01, gt=0, lt=0.5, description="Most probability of deciding right an input at least wrong_at.")
    chunk: int = Field(default=8, ge=1, le=1024, description="Draws taken between two looks at the test's bounds.")
    max_draws: int = Field(default=256, ge=1, le=65536, description="Draws after which an undecided input is decided by its share.")

    @model_validator(mode="after")
    def _ordered(self) -> "SequentialDecision":
        if self.right_at >= self.wrong_at:
            raise ValueError(f"right_at ({self.right_at}) must be below wrong_at ({self.wrong_at})")
        return self

    def bounds(self) -> tuple[float, float]:
        """The log-likelihood ratio below which an input is decided right, and above which wrong."""
        return math.log(self.beta / (1 - self.alpha)), math.log((1 - self.beta) / self.alpha)

    def steps(self) -> tuple[float, float]:
        """What one wrong draw and one right draw add to the log-likelihood ratio."""
        return math.log(self.wrong_at / self.right_at), math.log((1 - self.wrong_at) / (1 - self.right_at))


@torch.inference_mode()
def decide_sequentially(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, test: SequentialDecision) -> torch.Tensor:
    """Per-sample correctness of ``model`` (stochastic) on ``images`` under ``test``; draws only on the inputs still undecided."""
    count = len(images)
    correct = torch.ones(count, dtype=torch.bool)
    if count == 0:
        return correct
    ratio = torch.zeros(count, dtype=torch.float64)
    wrong = torch.zeros(count, dtype=torch.long)
    drawn = torch.zeros(count, dtype=torch.long)
    undecided = torch.ones(count, dtype=torch.bool)
    decided_right, decided_wrong = test.bounds()
    step_wrong, step_right = test.steps()
    while undecided.any():
        index = undecided.nonzero().squeeze(1)
        size = min(test.chunk, test.max_draws - int(drawn[index[0]]))
        misses = torch.zeros(len(index), dtype=torch.long)
        for part in draw_chunks(size, images[index]):
            predictions = model(repeated(images[index.to(images.device)], part)).argmax(1).view(part, len(index)).cpu()
            misses += (predictions != labels[index.to(labels.device)].cpu().unsqueeze(0)).sum(0)
        wrong[index] += misses
        drawn[index] += size
        ratio[index] += misses * step_wrong + (size - misses) * step_right
        now_wrong = ratio[index] >= decided_wrong
        now_right = ratio[index] <= decided_right
        correct[index[now_wrong]] = False
        undecided[index[now_wrong | now_right]] = False
        exhausted = undecided & (drawn >= test.max_draws)
        if exhausted.any():
            midpoint = (test.right_at + test.wrong_at) / 2
            correct[exhausted] = wrong[exhausted].double() / drawn[exhausted].double() < midpoint
            undecided &= ~exhausted
    return correct
