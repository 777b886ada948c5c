"""Attack methods behind one interface: ``perturb(model, spec, images, labels, seed) -> adversarial images``.

FGSM and PGD are ours because they must average gradients over a batched set of encoder draws
(EOT), differentiate through a chosen SNN gradient mode and stop attacking a deterministic
model's sample once it is fooled; torchattacks' PGD/EOTPGD do not combine these.
APGD-CE/DLR, AutoAttack (standard and rand) and Square come from pyautoattack. Transfer
crafts PGD examples on a source model. Every attack differentiates the target through its
chosen SNN gradient mode.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from pyautoattack import AutoAttack
from pyautoattack.autopgd_base import APGDAttack
from pyautoattack.square import SquareAttack
from torch import nn
from torch.nn import functional as F

from robustbench_snn.attacks.protocol import AttackSpec

logger = logging.getLogger(__name__)

Perturb = Callable[..., torch.Tensor]


# On a CPU, forward passes are fastest when their activations stay in cache: encoder draws are
# batched together only up to this many images per forward (measured: one forward of 512 images
# cost 1.9x the same work in forwards of 64 to 128). Accelerators take all draws in one forward.
CPU_IMAGES_PER_FORWARD = 128


def draw_chunks(draws: int, images: torch.Tensor) -> list[int]:
    """How many of ``draws`` encoder draws of ``images`` each forward pass takes."""
    per_forward = draws if images.device.type != "cpu" else max(1, CPU_IMAGES_PER_FORWARD // max(len(images), 1))
    return [min(per_forward, draws - start) for start in range(0, draws, per_forward)]


def repeated(tensor: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` copies of a batch, stacked along the batch dimension."""
    return tensor if count == 1 else tensor.repeat(count, *([1] * (tensor.dim() - 1)))


class ExpectedLogits(nn.Module):
    """A stochastic model's logits averaged over ``draws`` encoder draws, batched as `draw_chunks` says.

    Gradients through it average over the draws (EOT for attacks that call the model directly).
    """

    def __init__(self, model: nn.Module, draws: int) -> None:
        super().__init__()
        self.model = model
        self.draws = draws

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        total = 0
        for count in draw_chunks(self.draws, images):
            total = total + self.model(repeated(images, count)).view(count, images.shape[0], -1).sum(0)
        return total / self.draws


def loss_gradient(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, draws: int) -> tuple[torch.Tensor, torch.Tensor]:
    """EOT gradient of the cross-entropy, ``(1/k) sum_i grad L(f_i(x))``, and the draws' mean logits."""
    images = images.detach().requires_grad_(True)
    gradient, logits_sum = torch.zeros_like(images), 0
    for count in draw_chunks(draws, images):
        logits = model(repeated(images, count))
        loss = F.cross_entropy(logits, repeated(labels, count), reduction="sum") / draws
        (part,) = torch.autograd.grad(loss, images)
        gradient += part
        logits_sum = logits_sum + logits.detach().view(count, images.shape[0], -1).sum(0)
    return gradient, logits_sum / draws


def _per_sample_norm(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (tensor.dim() - 1)))


def _project(candidate: torch.Tensor, clean: torch.Tensor, spec: AttackSpec) -> torch.Tensor:
    delta = candidate - clean
    if spec.norm == "Linf":
        delta = delta.clamp(-spec.eps, spec.eps)
    else:
        delta = delta * (spec.eps / _per_sample_norm(delta)).clamp(max=1.0)
    return (clean + delta).clamp(0.0, 1.0)


def _random_start(clean: torch.Tensor, spec: AttackSpec, generator: torch.Generator) -> torch.Tensor:
    noise = torch.rand(clean.shape, generator=generator).to(clean) * 2 - 1
    if spec.norm == "L2":
        radius = torch.rand((clean.shape[0],), generator=generator).to(clean).view(-1, *([1] * (clean.dim() - 1)))
        noise = noise / _per_sample_norm(noise) * radius
    return _project(clean + spec.eps * noise, clean, spec)


def _ascent_step(images: torch.Tensor, gradient: torch.Tensor, step_size: float, norm: str) -> torch.Tensor:
    if norm == "Linf":
        return images + step_size * gradient.sign()
    return images + step_size * gradient / _per_sample_norm(gradient)


def pgd(
    model: nn.Module,
    spec: AttackSpec,
    images: torch.Tensor,
    labels: torch.Tensor,
    seed: int,
    draws: int = 1,
    stop_when_fooled: bool | None = None,
) -> torch.Tensor:
    """PGD (FGSM when ``spec.attack == 'fgsm'``) with EOT over ``draws`` and restarts.

    For a deterministic model a sample is frozen as soon as it is misclassified (exact early
    stopping), and restarts run only on samples not yet fooled. A stochastic model's samples run
    every step and keep their last iterate: freezing on a noisy verdict would leave them at
    borderline points that a fresh evaluation may call robust, inflating robust accuracy.
    ``stop_when_fooled=False`` runs every step on every sample (adversarial training wants that).
    """
    fgsm = spec.attack == "fgsm"
    steps = 1 if fgsm else spec.steps
    step_size = spec.step_size or (spec.eps if fgsm else 2.5 * spec.eps / steps)
    exact = not getattr(model, "stochastic", False) if stop_when_fooled is None else stop_when_fooled
    generator = torch.Generator().manual_seed(seed)
    adversarial = images.clone()
    fooled = torch.zeros(len(images), dtype=torch.bool, device=images.device)
    for _ in range(1 if fgsm else spec.restarts):
        index = (~fooled).nonzero().squeeze(1)
        if index.numel() == 0:
            break
        clean, targets = images[index], labels[index]
        current = _random_start(clean, spec, generator) if spec.random_start and not fgsm else clean.clone()
        for step in range(steps + 1):
            if step < steps:
                gradient, logits = loss_gradient(model, current, targets, draws)
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
            current = _project(_ascent_step(current, gradient[keep], step_size, spec.norm), clean, spec)
    return adversarial.detach()


def apgd(model: nn.Module, spec: AttackSpec, images: torch.Tensor, labels: torch.Tensor, seed: int, draws: int = 1) -> torch.Tensor:
    """APGD with the cross-entropy or DLR loss (pyautoattack); its EOT averages ``draws`` gradients."""
    attack = APGDAttack(
        model,
        n_iter=spec.steps,
        norm=spec.norm,
        n_restarts=spec.restarts,
        eps=spec.eps,
        seed=seed,
        loss="ce" if spec.attack == "apgd-ce" else "dlr",
        eot_iter=draws,
        device=images.device,
    )
    return attack.perturb(images, labels).detach()


def autoattack(model: nn.Module, spec: AttackSpec, images: torch.Tensor, labels: torch.Tensor, seed: int, draws: int = 1) -> torch.Tensor:
    """AutoAttack, standard or rand version (pyautoattack); rand fixes its own 20 EOT draws."""
    version = "rand" if spec.attack == "autoattack-rand" else "standard"
    runner = AutoAttack(model, eps=spec.eps, norm=spec.norm, seed=seed, version=version, device=images.device)
    runner.verbose = False
    adversarial, _ = runner.run_standard_evaluation(images, labels, batch_size=len(images))
    return adversarial.detach()


def square(model: nn.Module, spec: AttackSpec, images: torch.Tensor, labels: torch.Tensor, seed: int, draws: int = 1) -> torch.Tensor:
    """Square attack (black-box, score-based; pyautoattack) on the logits averaged over ``draws``."""
    attack = SquareAttack(
        ExpectedLogits(model, draws), norm=spec.norm, n_queries=spec.queries, eps=spec.eps, seed=seed, device=images.device
    )
    with torch.no_grad():
        return attack.perturb(images, labels).detach()


PERTURB: dict[str, Perturb] = {
    "fgsm": pgd,
    "pgd": pgd,
    "apgd-ce": apgd,
    "apgd-dlr": apgd,
    "autoattack": autoattack,
    "autoattack-rand": autoattack,
    "square": square,
}
