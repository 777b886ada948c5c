"""The batch losses of the generic training recipes (declared in `robustbench_snn.defences`) and
what they share with the published defences' own (a module each beside this one).

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

A builder ``build_*(model, spec, dataset, config, device)`` returns a recipe's batch loss for a
model, checking that the recipe fits it; ``config.options`` holds the recipe's own parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from robustbench_snn.attacks.methods.pgd import pgd
from robustbench_snn.attacks.protocol import AttackSpec
from robustbench_snn.defences import RECIPES
from robustbench_snn.errors import UserError
from robustbench_snn.models import Classifier, ModelSpec, SpikingActivation
from robustbench_snn.seeds import batch_seed

_SURROGATE_GRADIENTS = {
    "paper": "Neftci, Mostafa and Zenke, Surrogate Gradient Learning in Spiking Neural Networks, IEEE Signal Processing Magazine 2019",
    "url": "https://arxiv.org/abs/1901.09948",
}


def recipe_reference(recipe: str, kind: str, encoding: str) -> dict:
    """The work a model trained with ``recipe`` follows: the recipe's paper; for the standard
    recipe, the RSC paper for an RSC-coded model, surrogate-gradient learning for other SNNs."""
    reference = RECIPES[recipe].reference
    if reference is not None:
        return reference
    if encoding == "rsc":
        return RECIPES["rsc"].reference
    if kind == "snn":
        return _SURROGATE_GRADIENTS
    return {"paper": "standard supervised training with cross-entropy (no paper recipe)"}


@dataclass
class BatchLoss:
    """A batch's total loss, the logits it was computed from, and its named parts (for logging)."""

    total: torch.Tensor
    logits: torch.Tensor
    parts: dict[str, float]


# A recipe's batch loss; one that also constrains the weights has ``after_step(model)``, which the
# training loop calls after every optimiser step, one that starts from something measured on
# the data has ``prepare(model, images)``, called once before training with the training images,
# and one whose loss follows a schedule has ``total_steps``, which the loop sets before training.
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
    """Cross-entropy on examples of ``spec`` (PGD, or FGSM as its one step) crafted against the current weights."""

    def __init__(self, spec: AttackSpec, seed: int) -> None:
        self.spec = spec
        self.seed = seed

    def __call__(self, model: Classifier, images: torch.Tensor, labels: torch.Tensor, step: int) -> BatchLoss:
        model.eval()
        one_step = self.spec.attack == "fgsm"
        adversarial = pgd(model, self.spec, images, labels, batch_seed(self.seed, step), stop_when_fooled=False, one_step=one_step)
        model.train()
        logits = model(adversarial)
        loss = F.cross_entropy(logits, labels)
        return BatchLoss(loss, logits, {"adversarial_ce": loss.item()})


def build_standard(model: Classifier, spec: ModelSpec, dataset: str, config: Any, device: str) -> Recipe:
    return cross_entropy


def build_rsc(model: Classifier, spec: ModelSpec, dataset: str, config: Any, device: str) -> Recipe:
    if spec.encoding != "rsc":
        raise UserError("the rsc recipe trains RSC models; pass --encoding rsc with --sigma and --variant")
    return cross_entropy


def build_distillation(model: Classifier, spec: ModelSpec, dataset: str, config: Any, device: str) -> Recipe:
    from robustbench_snn.registry import load_model

    if spec.kind != "snn":
        raise UserError("the ersct recipe distils an ANN teacher into an SNN; pass --kind snn")
    options = config.options
    teacher = load_model(options["teacher"], device=device)
    if teacher.card.kind != "ann" or teacher.card.dataset != dataset or teacher.card.architecture.name != spec.architecture:
        raise UserError(f"teacher {options['teacher']!r} must be an ANN of architecture {spec.architecture!r} trained on {dataset}")
    return Distillation(model, teacher, options["kd_weight"], options["kd_temperature"], options["presynaptic_weight"])


def build_adversarial_training(model: Classifier, spec: ModelSpec, dataset: str, config: Any, device: str) -> Recipe:
    attack = AttackSpec(attack="pgd", norm="Linf", eps=config.options["at_eps"], steps=config.options["at_steps"], random_start=True)
    return AdversarialTraining(attack, config.seed)
