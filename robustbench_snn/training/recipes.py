"""Training recipes: the loss of one batch, for each recipe a model card can name.

- ``standard``: cross-entropy. SNNs learn by BPTT through their training surrogate; stochastic
  encoders draw their noise at every forward, so a Poisson or RSC model trains under its own noise.
- ``rsc``: the same loss, for RSC models only (the paper's "training under RSC noise"); an RSC
  model trained with ``standard`` has had exactly this recipe.
- ``ersct``: E-RSCT (Wu et al. 2024), our reading of it, since the paper's exact loss is not
  public: cross-entropy + ``kd_weight`` x KL divergence from a trained ANN teacher's softened
  logits (temperature ``kd_temperature``, scaled by its square as in Hinton et al. 2015) +
  ``presynaptic_weight`` x the pre-synaptic loss: the mean over spiking layers of the MSE between
  the layer's time-averaged input current and the teacher's pre-activation at the matching
  layer (the input of its ReLU). The teacher sees the clean image; the student its own encoding.
- ``pgd-at``: PGD adversarial training (Madry et al. 2018): cross-entropy on Linf PGD examples
  crafted against the current weights (eval mode, every step, random start, BPTT through the
  training surrogate for SNNs, single-draw gradients for stochastic models).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from robustbench_snn.attacks.methods.pgd import pgd
from robustbench_snn.attacks.protocol import AttackSpec
from robustbench_snn.errors import UserError
from robustbench_snn.models import Classifier, SpikingActivation
from robustbench_snn.seeds import batch_seed

_RSC_PAPER = {
    "paper": "Wu et al., RSC-SNN: Exploring the Trade-off Between Adversarial Robustness and "
    "Accuracy in Spiking Neural Networks via Randomized Smoothing Coding, ACM MM 2024",
    "url": "https://arxiv.org/abs/2407.20099",
}
_SURROGATE_GRADIENTS = {
    "paper": "Neftci, Mostafa and Zenke, Surrogate Gradient Learning in Spiking Neural Networks, IEEE Signal Processing Magazine 2019",
    "url": "https://arxiv.org/abs/1901.09948",
}
# Each recipe's source, as the card of a model trained with it cites it (`recipe_reference`).
RECIPES = {
    "standard": None,
    "rsc": _RSC_PAPER,
    "ersct": _RSC_PAPER,
    "pgd-at": {
        "paper": "Madry et al., Towards Deep Learning Models Resistant to Adversarial Attacks, ICLR 2018",
        "url": "https://arxiv.org/abs/1706.06083",
    },
}


def recipe_reference(recipe: str, kind: str, encoding: str) -> dict:
    """The work a model trained with ``recipe`` follows: the recipe's paper; for the standard
    recipe, the RSC paper for an RSC-coded model, surrogate-gradient learning for other SNNs."""
    if RECIPES[recipe] is not None:
        return RECIPES[recipe]
    if encoding == "rsc":
        return _RSC_PAPER
    if kind == "snn":
        return _SURROGATE_GRADIENTS
    return {"paper": "standard supervised training with cross-entropy (no paper recipe)"}


@dataclass
class BatchLoss:
    """A batch's total loss, the logits it was computed from, and its named parts (for logging)."""

    total: torch.Tensor
    logits: torch.Tensor
    parts: dict[str, float]


Recipe = Callable[[Classifier, torch.Tensor, torch.Tensor, int], BatchLoss]


def cross_entropy(model: Classifier, images: torch.Tensor, labels: torch.Tensor, step: int) -> BatchLoss:
    logits = model(images)
    loss = F.cross_entropy(logits, labels)
    return BatchLoss(loss, logits, {"ce": loss.item()})


class LayerInputs:
    """Inside a ``with`` block, records the input of every module of one type, in call order."""

    def __init__(self, model: nn.Module, module_type: type[nn.Module]) -> None:
        self.modules = [module for module in model.modules() if isinstance(module, module_type)]

    def __enter__(self) -> list[torch.Tensor]:
        self.inputs: list[torch.Tensor] = []
        self.handles = [module.register_forward_hook(self._record) for module in self.modules]
        return self.inputs

    def _record(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        self.inputs.append(args[0])

    def __exit__(self, *exception: object) -> None:
        for handle in self.handles:
            handle.remove()


class Distillation:
    """The E-RSCT loss of a spiking student against an ANN teacher of the same architecture."""

    def __init__(self, student: Classifier, teacher: Classifier, kd_weight: float, temperature: float, presynaptic_weight: float) -> None:
        self.teacher = teacher.eval().requires_grad_(False)
        self.student_currents = LayerInputs(student, SpikingActivation)
        self.teacher_currents = LayerInputs(self.teacher, nn.ReLU)
        student_count, teacher_count = len(self.student_currents.modules), len(self.teacher_currents.modules)
        if not student_count or student_count != teacher_count:
            raise UserError(
                f"E-RSCT needs an SNN student and an ANN teacher with matching activation layers; "
                f"got {student_count} spiking and {teacher_count} ReLU layers"
            )
        self.timesteps = student.timesteps
        self.kd_weight, self.temperature, self.presynaptic_weight = kd_weight, temperature, presynaptic_weight

    def terms(self, model: Classifier, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The student's logits and the three unweighted loss terms: ``ce``, ``kd``, ``presynaptic``."""
        with self.student_currents as currents, self.teacher_currents as targets:
            logits = model(images)
            with torch.no_grad():
                teacher_logits = self.teacher(images)
        scale = self.temperature
        kd = (
            F.kl_div(F.log_softmax(logits / scale, 1), F.log_softmax(teacher_logits / scale, 1), reduction="batchmean", log_target=True)
            * scale**2
        )
        presynaptic = torch.stack(
            [
                F.mse_loss(current.view(self.timesteps, -1, *current.shape[1:]).mean(0), target)
                for current, target in zip(currents, targets, strict=True)
            ]
        ).mean()
        return logits, {"ce": F.cross_entropy(logits, labels), "kd": kd, "presynaptic": presynaptic}

    def __call__(self, model: Classifier, images: torch.Tensor, labels: torch.Tensor, step: int) -> BatchLoss:
        logits, terms = self.terms(model, images, labels)
        total = terms["ce"] + self.kd_weight * terms["kd"] + self.presynaptic_weight * terms["presynaptic"]
        return BatchLoss(total, logits, {name: value.item() for name, value in terms.items()})


class AdversarialTraining:
    """Cross-entropy on PGD examples crafted against the current weights."""

    def __init__(self, eps: float, steps: int, seed: int) -> None:
        self.spec = AttackSpec(attack="pgd", norm="Linf", eps=eps, steps=steps, random_start=True)
        self.seed = seed

    def __call__(self, model: Classifier, images: torch.Tensor, labels: torch.Tensor, step: int) -> BatchLoss:
        model.eval()
        adversarial = pgd(model, self.spec, images, labels, batch_seed(self.seed, step), stop_when_fooled=False)
        model.train()
        logits = model(adversarial)
        loss = F.cross_entropy(logits, labels)
        return BatchLoss(loss, logits, {"adversarial_ce": loss.item()})
