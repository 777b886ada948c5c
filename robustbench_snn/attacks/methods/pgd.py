"""PGD and FGSM, ours: EOT over batched encoder draws, any SNN gradient mode, exact early stopping.

torchattacks' PGD/EOTPGD do not combine these. The loss is cross-entropy (its gradient averaged
over draws) or a margin, CW or DLR, on the logits averaged over the draws: cross-entropy
saturates on confident SNN logits, margins do not.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from robustbench_snn.attacks.attack import Attack, register_attack
from robustbench_snn.attacks.primitives import ExpectedLogits, ascent_step, loss_gradient, project, random_start, wrong_class_logits
from robustbench_snn.attacks.protocol import AttackSpec


def step_size_of(spec, steps: int, one_step: bool = False) -> float:
    """The (first) step: ``step_size``, else ``step_ratio`` x eps (a paper's step, at whatever eps it runs), else eps for
    one step, eps / 2 for a cosine schedule and 2.5 eps / steps for constant steps."""
    if spec.step_size is not None:
        return spec.step_size
    ratio = getattr(spec, "step_ratio", None)  # a preset's field: absent from the command line's fields
    if ratio is not None:
        return ratio * spec.eps
    if one_step:
        return spec.eps
    return spec.eps / 2 if spec.step_schedule == "cosine" else 2.5 * spec.eps / steps


def scheduled_steps(spec, steps: int, one_step: bool = False) -> list[float]:
    """The step of each iteration: `step_size_of` throughout, or under ``step_schedule: cosine``
    decaying from it along a half cosine (iteration t of T: ``0.5 (1 + cos(pi t / T))`` times it).

    Large early steps reach the corners of the ball, where a sharp surrogate's gradient points
    across a spike threshold that small fixed steps never cross (issue 40's red team: with the same
    sharp surrogate, the fixed step fooled none of the survivors that a decaying one fooled)."""
    first = step_size_of(spec, steps, one_step)
    if spec.step_schedule == "constant" or one_step:
        return [first] * steps
    return [first * 0.5 * (1 + math.cos(math.pi * step / steps)) for step in range(steps)]


def pgd(
    model: nn.Module,
    spec: AttackSpec,
    images: torch.Tensor,
    labels: torch.Tensor,
    seed: int,
    draws: int = 1,
    stop_when_fooled: bool | None = None,
    one_step: bool = False,
    targeted: bool = False,
) -> torch.Tensor:
    """PGD (FGSM with ``one_step``: one step of size eps from the clean input) with EOT over
    ``draws`` and restarts; ``targeted``: each restart r maximises the CW margin toward the r-th
    most likely wrong class at the clean input (`ranked_wrong_classes`) instead of the largest,
    counting r from ``spec.first_restart`` (the runner runs a member's restarts one at a time).

    For a deterministic model a sample is frozen as soon as it is misclassified (exact early
    stopping), and restarts run only on samples not yet fooled. A stochastic model's samples run
    every step and keep their last iterate: freezing on a noisy verdict would leave them at
    borderline points that a fresh evaluation may call robust, inflating robust accuracy.
    ``stop_when_fooled=False`` runs every step on every sample (adversarial training wants that).
    """
    steps = 1 if one_step else spec.steps
    step_sizes = scheduled_steps(spec, steps, one_step)
    exact = not getattr(model, "stochastic", False) if stop_when_fooled is None else stop_when_fooled
    generator = torch.Generator().manual_seed(seed)
    adversarial = images.clone()
    fooled = torch.zeros(len(images), dtype=torch.bool, device=images.device)
    ranked = ranked_wrong_classes(model, images, labels, draws) if targeted else None
    for restart in range(1 if one_step else spec.restarts):
        index = (~fooled).nonzero().squeeze(1)
        if index.numel() == 0:
            break
        clean, targets = images[index], labels[index]
        toward = ranked[index, (spec.first_restart + restart) % ranked.shape[1]] if ranked is not None else None
        current = random_start(clean, spec, generator) if spec.random_start and not one_step else clean.clone()
        for step in range(steps + 1):
            if step < steps:
                gradient, logits = loss_gradient(model, current, targets, draws, spec.loss, toward)
            elif exact:
                with torch.no_grad():
                    logits = model(current)
            if exact:
                wrong = logits.argmax(1) != targets
                adversarial[index[wrong]] = current[wrong]
                fooled[index[wrong]] = True
                keep = ~wrong
            else:
                keep = torch.ones(len(index), dtype=torch.bool, device=images.device)
            if step == steps or not keep.any():
                adversarial[index[keep]] = current[keep]
                break
            index, clean, targets, current = index[keep], clean[keep], targets[keep], current[keep]
            toward = toward[keep] if toward is not None else None
            current = project(ascent_step(current, gradient[keep], step_sizes[step], spec.norm), clean, spec)
    return adversarial.detach()


@torch.no_grad()
def ranked_wrong_classes(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, draws: int = 1) -> torch.Tensor:
    """Each sample's wrong classes, most likely first, by its clean logits (averaged over ``draws``)."""
    return wrong_class_logits(ExpectedLogits(model, draws)(images), labels).argsort(1, descending=True)[:, :-1]


@register_attack
class PGD(Attack):
    name = "pgd"
    description = "projected gradient descent from a random start, with restarts (Madry et al. 2018)"
    loss_choice = True
    schedules_steps = True

    def perturb(self, model, spec, images, labels, seed, draws):
        return pgd(model, spec, images, labels, seed, draws)


@register_attack
class FGSM(Attack):
    name = "fgsm"
    description = "one signed-gradient step of size eps (Goodfellow et al. 2015)"
    loss_choice = True
    shows_steps = False

    def with_more_steps(self, spec: AttackSpec, factor: int) -> AttackSpec:
        return spec.model_copy(update={"attack": "pgd", "steps": max(spec.steps, 10) * factor})

    def perturb(self, model, spec, images, labels, seed, draws):
        return pgd(model, spec, images, labels, seed, draws, one_step=True)
