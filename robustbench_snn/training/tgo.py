"""TGO, Threshold Guarding Optimization (Wang et al., ICLR 2026, arXiv 2602.20548): our reading.

Two parts, as the paper describes them. The network's neurons are noisy LIF neurons
(`robustbench_snn.models.noisy_neurons`, ``--noise-sigma``), which fire with a probability that
grows with the potential instead of flipping at the threshold. The loss adds a constraint that
keeps membrane potentials away from the threshold: per spiking layer l,
``C_l = mean over steps, neurons and images of max(0, margin - |h_t - threshold|)``, and the loss
is ``cross-entropy + lambda * sum_l C_l`` (the paper's eq. 12-13). The paper makes lambda dynamic
because a fixed one either stalls early training or does not enforce the constraint; its schedule
could not be read here, so ours is a linear ramp from 0 to ``tgo_lambda`` over training: the
constraint is weak while the network learns to classify and full at the end. No adversarial
examples are used: TGO claims robustness without adversarial training or inference overhead.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from robustbench_snn.errors import UserError
from robustbench_snn.models import Classifier, ModelSpec
from robustbench_snn.models.noisy_neurons import NoisyActivation
from robustbench_snn.training.recipes import BatchLoss


def threshold_proximity(gaps: torch.Tensor, margin: float) -> torch.Tensor:
    """The constraint of one layer: how far inside ``margin`` of the threshold its potentials
    ``gaps = h - threshold`` lie, on average (zero when every potential is at least ``margin`` away)."""
    return torch.relu(margin - gaps.abs()).mean()


class ThresholdGuarding:
    """Cross-entropy plus the ramped threshold-proximity constraint of every noisy layer."""

    def __init__(self, model: Classifier, margin: float, weight: float) -> None:
        self.layers = [layer for layer in model.spiking_layers if isinstance(layer, NoisyActivation)]
        self.margin, self.weight = margin, weight
        self.total_steps = 1  # set by the training loop before the first step

    def weight_at(self, step: int) -> float:
        """lambda at training step ``step`` (from 0): a linear ramp from 0 to the full weight on the last step."""
        return self.weight * min(1.0, (step + 1) / self.total_steps)

    def __call__(self, model: Classifier, images: torch.Tensor, labels: torch.Tensor, step: int) -> BatchLoss:
        recorded: list[list[torch.Tensor]] = [[] for _ in self.layers]
        for layer, gaps in zip(self.layers, recorded):
            layer.potential_gaps = gaps
        try:
            logits = model(images)
        finally:
            for layer in self.layers:
                layer.potential_gaps = None
        cross_entropy = F.cross_entropy(logits, labels)
        proximity = torch.stack([threshold_proximity(torch.cat(gaps, 1), self.margin) for gaps in recorded]).sum()
        total = cross_entropy + self.weight_at(step) * proximity
        return BatchLoss(total, logits, {"ce": cross_entropy.item(), "proximity": proximity.item()})


def build(model: Classifier, spec: ModelSpec, dataset: str, config: Any, device: str) -> ThresholdGuarding:
    if spec.kind != "snn" or spec.neuron.type != "noisy":
        raise UserError("tgo trains noisy-neuron SNNs; pass --kind snn and --noise-sigma (the firing noise's standard deviation)")
    return ThresholdGuarding(model, config.options["tgo_margin"], config.options["tgo_lambda"])
