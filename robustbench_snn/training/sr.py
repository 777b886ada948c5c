"""SR, sparse gradient regularisation (Liu et al., ICML 2024, arXiv 2405.20355): our reading of the
paper and its authors' code (github putshua/gradient_reg_defense, read, not copied).

The paper bounds the gap between an SNN's accuracy under adversarial and under random perturbations
by how dense the gradient of its true-class probability is, and makes it sparse: the loss adds
``lambda`` x the squared L1 norm of that gradient, estimated by a finite difference along its own
sign, ``((f(x + h sign g) - f(x)) / h)^2`` with ``g = df/dx`` (``h`` 0.01), where ``f`` is the
probability of the true class against the strongest other class (a softmax of those two logits of
the time-averaged output). The direction is held fixed; the difference is differentiated through
both forwards, so the network learns to flatten its probability along the direction an attacker
would take. No adversarial examples: SR alone, as the paper's main rows train it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from robustbench_snn.errors import UserError
from robustbench_snn.models import Classifier, ModelSpec
from robustbench_snn.training.recipes import BatchLoss


def true_class_probability(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each image's probability of its true class against its strongest other class."""
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf")).amax(1)
    return torch.sigmoid(true - others)


class SparseGradientRegularisation:
    """Cross-entropy plus ``weight`` x the finite-difference estimate of ``||d f / dx||_1^2``."""

    def __init__(self, weight: float, step: float) -> None:
        self.weight, self.step = weight, step

    def __call__(self, model: Classifier, images: torch.Tensor, labels: torch.Tensor, step: int) -> BatchLoss:
        images = images.clone().requires_grad_(True)
        logits = model(images)
        probability = true_class_probability(logits, labels)
        (gradient,) = torch.autograd.grad(probability.sum(), images, retain_graph=True)
        moved = images + self.step * gradient.sign()
        difference = (true_class_probability(model(moved), labels) - probability) / self.step
        sparsity = (difference**2).mean()
        cross_entropy = F.cross_entropy(logits, labels)
        total = cross_entropy + self.weight * sparsity
        return BatchLoss(total, logits, {"ce": cross_entropy.item(), "gradient_l1_sq": sparsity.item()})


def build(model: Classifier, spec: ModelSpec, dataset: str, config: Any, device: str) -> SparseGradientRegularisation:
    if spec.kind != "snn":
        raise UserError("sr regularises SNNs; pass --kind snn")
    return SparseGradientRegularisation(config.options["sr_lambda"], config.options["sr_step"])
