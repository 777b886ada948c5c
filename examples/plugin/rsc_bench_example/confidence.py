"""A result column: how confident the model is on the protocol's final inputs (its mean top-class
probability), measured on every batch and shown in `rsc-bench results` and on the leaderboard."""

import torch

from robustbench_snn.columns import BatchContext, Column, register_column


@register_column
class FinalConfidence(Column):
    name = "example_confidence"
    title = "confidence %"
    description = "the mean top-class softmax probability on the protocol's final inputs"

    def measure(self, batch: BatchContext) -> dict:
        with torch.no_grad():
            top = batch.model(batch.final).softmax(-1).max(-1).values
        return {"sum": float(top.sum()), "count": len(top)}

    def combine(self, values: list[dict], n_examples: int) -> float:
        return sum(value["sum"] for value in values) / n_examples

    def cell(self, value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}"
