"""SA-PGD (Wang et al., arXiv 2512.22522), ours, written from the paper's rule."""

from __future__ import annotations

import torch
from torch import nn

from robustbench_snn.attacks.attack import Attack, register_attack
from robustbench_snn.attacks.primitives import ExpectedLogits, loss_gradient, per_sample_norm, project, random_start
from robustbench_snn.attacks.protocol import AttackSpec


def sapgd(model: nn.Module, spec: AttackSpec, images: torch.Tensor, labels: torch.Tensor, seed: int, draws: int = 1) -> torch.Tensor:
    """SA-PGD (Wang et al., arXiv 2512.22522): a stable adaptive PGD for the non-smooth input space of SNNs.

    From a random start, with ``g`` the EOT gradient normalised by its per-sample mean |g|:
    ``m <- 0.5 m + g``, ``v <- 0.8 v + g^2 / mean(g^2)``, step ``clip(m / sqrt(v) * a, -a, a)``
    (Linf; for L2 the step is rescaled to norm ``a``). The step size ``a`` starts at eps and halves
    after ``k`` iterations, ``k`` starting at 22% of the steps and shrinking by 3% of them after
    each halving down to 6%. Every sample runs every step; a sample counts as fooled at the first
    iterate the model misclassifies (under the draws' mean logits), and that iterate is returned;
    restarts run on the samples not yet fooled. A stochastic model's samples keep their last iterate.
    """
    generator = torch.Generator().manual_seed(seed)
    adversarial = images.clone()
    fooled = torch.zeros(len(images), dtype=torch.bool, device=images.device)
    for _ in range(spec.restarts):
        index = (~fooled).nonzero().squeeze(1)
        if index.numel() == 0:
            break
        clean, targets = images[index], labels[index]
        current = random_start(clean, spec, generator)
        step_size = torch.full((len(index),) + (1,) * (images.dim() - 1), spec.eps, device=images.device)
        period, shrink, shortest = (max(int(share * spec.steps), 1) for share in (0.22, 0.03, 0.06))
        since_halving = 0
        best = current.clone()
        hit = torch.zeros(len(index), dtype=torch.bool, device=images.device)
        first = second = None
        for _step in range(spec.steps):
            gradient, logits = loss_gradient(model, current, targets, draws, spec.loss)
            newly = (logits.argmax(1) != targets) & ~hit
            best[newly], hit = current[newly], hit | newly
            scaled = gradient / gradient.abs().flatten(1).mean(1).clamp_min(1e-12).view_as(step_size)
            squared = gradient**2 / (gradient**2).flatten(1).mean(1).clamp_min(1e-24).view_as(step_size)
            first = scaled if first is None else 0.5 * first + scaled
            second = squared if second is None else 0.8 * second + squared
            direction = first / (second.sqrt() + 1e-12)
            if spec.norm == "Linf":
                update = torch.maximum(torch.minimum(direction * step_size, step_size), -step_size)
            else:
                update = direction / per_sample_norm(direction) * step_size
            current = project(current + update, clean, spec)
            since_halving += 1
            if since_halving == period:
                step_size, since_halving, period = step_size / 2, 0, max(period - shrink, shortest)
        with torch.no_grad():
            last_wrong = ExpectedLogits(model, draws)(current).argmax(1) != targets
        if getattr(model, "stochastic", False):
            # A stochastic model's verdict at one iterate is noisy: keep the last iterate (as PGD does).
            best, hit = current, last_wrong
        else:
            best[~hit & last_wrong] = current[~hit & last_wrong]
            hit |= last_wrong
        adversarial[index] = torch.where(hit.view(-1, *([1] * (images.dim() - 1))), best, current)
        fooled[index[hit]] = True
    return adversarial.detach()


@register_attack
class SAPGD(Attack):
    name = "sapgd"
    description = "stable adaptive PGD for the non-smooth input space of SNNs (Wang et al. 2025)"
    loss_choice = True

    def perturb(self, model, spec, images, labels, seed, draws):
        return sapgd(model, spec, images, labels, seed, draws)
