"""MI-DI-FGSM, ours: momentum (Dong et al., CVPR 2018) and input diversity (Xie et al., CVPR 2019),
the transfer attacks' standard optimiser, on a source model or an ensemble of them."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from robustbench_snn.attacks.attack import Attack, register_attack
from robustbench_snn.attacks.primitives import ascent_step, loss_gradient, project, random_start
from robustbench_snn.attacks.protocol import AttackSpec

MOMENTUM = 1.0
# Input diversity: with this probability per step, the batch is shrunk to a random size between
# DIVERSITY_SCALE and 1 of its side and padded back at a random offset (the model's input size).
DIVERSITY_PROBABILITY = 0.5
DIVERSITY_SCALE = 0.85


def diverse(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``images`` (``[B, C, H, W]``), with probability DIVERSITY_PROBABILITY shrunk and padded back
    at a random offset; a differentiable map, so gradients reach the original pixels."""
    if images.dim() != 4 or torch.rand((), generator=generator) >= DIVERSITY_PROBABILITY:
        return images
    height, width = images.shape[-2:]
    low = max(1, int(DIVERSITY_SCALE * min(height, width)))
    side = int(torch.randint(low, min(height, width) + 1, (), generator=generator))
    shrunk = F.interpolate(images, size=(side * height // min(height, width), side * width // min(height, width)), mode="nearest")
    top = int(torch.randint(0, height - shrunk.shape[-2] + 1, (), generator=generator))
    left = int(torch.randint(0, width - shrunk.shape[-1] + 1, (), generator=generator))
    return F.pad(shrunk, (left, width - shrunk.shape[-1] - left, top, height - shrunk.shape[-2] - top))


class _Diversified(nn.Module):
    def __init__(self, model: nn.Module, generator: torch.Generator) -> None:
        super().__init__()
        self.model, self.generator = model, generator

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(diverse(images, self.generator))


def mi_di_fgsm(model: nn.Module, spec: AttackSpec, images: torch.Tensor, labels: torch.Tensor, seed: int, draws: int = 1) -> torch.Tensor:
    """``spec.steps`` signed steps along the accumulated L1-normalised gradient
    ``g <- MOMENTUM g + grad / |grad|_1``, each gradient taken at a diversified input; from a random
    start (unless ``random_start`` is off), step ``2.5 eps / steps`` by default. Returns the last iterate."""
    generator = torch.Generator().manual_seed(seed)
    step_size = spec.step_size or 2.5 * spec.eps / spec.steps
    current = random_start(images, spec, generator) if spec.random_start else images.clone()
    momentum = torch.zeros_like(images)
    diversified = _Diversified(model, generator)
    for _ in range(spec.steps):
        gradient, _ = loss_gradient(diversified, current, labels, draws, spec.loss)
        momentum = MOMENTUM * momentum + gradient / gradient.abs().flatten(1).sum(1).clamp_min(1e-12).view(-1, *([1] * (images.dim() - 1)))
        current = project(ascent_step(current, momentum, step_size, spec.norm), images, spec)
    return current.detach()


@register_attack
class MIDIFGSM(Attack):
    name = "mi-di-fgsm"
    description = "momentum and input-diversity iterative FGSM (Dong et al. 2018; Xie et al. 2019), for transfer from a source"
    loss_choice = True

    def perturb(self, model, spec, images, labels, seed, draws):
        return mi_di_fgsm(model, spec, images, labels, seed, draws)
