"""SNN-RAT (Ding et al., NeurIPS 2022): regularised adversarial training of SNNs, our reading of the
paper and its authors' code.

Each batch trains on cross-entropy at FGSM examples crafted against the current weights (eval
mode, BPTT through the training surrogate, from the clean input, radius ``rat_eps``: a quarter of
the threat model's by default, as the authors train at 2/255 against 8/255). After every optimiser
step the weights of each convolution and linear layer are pulled toward a Parseval-tight frame,
``W <- (1 + beta) W - beta W W^T W`` on the rows of ``W`` flattened to a matrix (a layer of 200
rows or more on a random 30% of them, redrawn each step), which bounds each layer's Lipschitz
constant: the paper's regulariser of the network's sensitivity to its input. The authors use SGD
with momentum; here it runs in the training loop every recipe shares (Adam).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustbench_snn.attacks.protocol import AttackSpec
from robustbench_snn.errors import UserError
from robustbench_snn.models import Classifier, ModelSpec
from robustbench_snn.training.recipes import AdversarialTraining

# Layers with at least this many rows are retracted on a random share of them per step, as the authors do.
SAMPLED_ROWS_FROM = 200
SAMPLED_ROW_SHARE = 0.3


def parseval_retraction(model: nn.Module, beta: float, generator: torch.Generator) -> None:
    """One retraction step of every convolution and linear layer's weights toward orthonormal rows."""
    with torch.no_grad():
        for layer in model.modules():
            if not isinstance(layer, (nn.Conv2d, nn.Linear)):
                continue
            matrix = layer.weight.view(layer.weight.shape[0], -1)
            rows = torch.arange(matrix.shape[0])
            if isinstance(layer, nn.Linear) and matrix.shape[0] >= SAMPLED_ROWS_FROM:
                rows = torch.randperm(matrix.shape[0], generator=generator)[: int(matrix.shape[0] * SAMPLED_ROW_SHARE)]
            chosen = matrix[rows.to(matrix.device)]
            matrix[rows.to(matrix.device)] = (1 + beta) * chosen - beta * chosen @ chosen.T @ chosen


class RegularisedAdversarialTraining(AdversarialTraining):
    """Cross-entropy at FGSM examples of the current weights, then a Parseval retraction of the weights."""

    def __init__(self, eps: float, beta: float, seed: int) -> None:
        super().__init__(AttackSpec(attack="fgsm", norm="Linf", eps=eps, random_start=False), seed)
        self.beta = beta
        self.generator = torch.Generator().manual_seed(seed)

    def after_step(self, model: nn.Module) -> None:
        parseval_retraction(model, self.beta, self.generator)


def build(model: Classifier, spec: ModelSpec, dataset: str, config: Any, device: str) -> RegularisedAdversarialTraining:
    if spec.kind != "snn":
        raise UserError("snn-rat trains SNNs; pass --kind snn")
    return RegularisedAdversarialTraining(config.options["rat_eps"], config.options["parseval_beta"], config.seed)
