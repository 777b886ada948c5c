"""Attack methods behind one interface: ``perturb(model, spec, images, labels, seed) -> adversarial images``.

FGSM and PGD are ours because they must average gradients over a batched set of encoder draws
(EOT), differentiate through a chosen SNN gradient mode and stop attacking a deterministic
model's sample once it is fooled; torchattacks' PGD/EOTPGD do not combine these. Their loss is
cross-entropy (the gradient averaged over draws) or a margin, CW or DLR, taken on the logits
averaged over the draws: cross-entropy saturates on confident SNN logits, margins do not.
SA-PGD (Wang et al., arXiv 2512.22522) is ours too, written from the paper's rule.
APGD-CE/DLR, AutoAttack (standard and rand) and Square come from pyautoattack. Transfer
crafts PGD examples on a source model. Every attack differentiates the target through its
chosen SNN gradient mode.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from pyautoattack import AutoAttack
from pyautoattack.autopgd_base import APGDAttack
from pyautoattack.square import SquareAttack
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from robustbench_snn.attacks.protocol import AttackSpec
from robustbench_snn.models.neurons import holding_sharpness, uses_adaptive_sharpness

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


def margin_loss(logits: torch.Tensor, labels: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-sample margin to maximise: CW ``max_{j != y} z_j - z_y``, or DLR (Croce and Hein 2020),
    the same margin divided by the gap between the largest and third-largest logit."""
    true = logits.gather(1, labels.unsqueeze(1)).squeeze(1)
    others = logits.scatter(1, labels.unsqueeze(1), float("-inf")).amax(1)
    if loss == "cw":
        return others - true
    ordered = logits.sort(1).values
    return (others - true) / (ordered[:, -1] - ordered[:, -3] + 1e-12)


def input_gradient(objective: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """``d objective / d images``; zero where the model's graph does not reach its input at all (a
    user's encoder that samples without a straight-through gradient), as the flags expect."""
    (gradient,) = torch.autograd.grad(objective, images, allow_unused=True)
    return torch.zeros_like(images) if gradient is None else gradient


def _draw_chunks_for(model: nn.Module, draws: int, images: torch.Tensor) -> list[int]:
    """`draw_chunks`, except that an adaptive-sharpness surrogate's first forward holds one draw alone:
    its moments move on that draw only, once per gradient."""
    if draws > 1 and uses_adaptive_sharpness(model):
        return [1, *draw_chunks(draws - 1, images)]
    return draw_chunks(draws, images)


def loss_gradient(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, draws: int, loss: str = "ce"
) -> tuple[torch.Tensor, torch.Tensor]:
    """EOT gradient of the loss and the draws' mean logits.

    Cross-entropy: ``(1/k) sum_i grad L(f_i(x))``, one backward per forward. A margin loss is taken
    on the mean logits ``(1/k) sum_i f_i(x)``, so all draws stay in one graph until its backward.
    """
    images = images.detach().requires_grad_(True)
    gradient, logits_sum = torch.zeros_like(images), 0
    for number, count in enumerate(_draw_chunks_for(model, draws, images)):
        with holding_sharpness(model, number > 0):
            logits = model(repeated(images, count))
        if loss == "ce":
            objective = F.cross_entropy(logits, repeated(labels, count), reduction="sum") / draws
            gradient += input_gradient(objective, images)
            logits = logits.detach()
        logits_sum = logits_sum + logits.view(count, images.shape[0], -1).sum(0)
    mean_logits = logits_sum / draws
    if loss != "ce":
        gradient = input_gradient(margin_loss(mean_logits, labels, loss).sum(), images)
    return gradient, mean_logits.detach()


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
                gradient, logits = loss_gradient(model, current, targets, draws, spec.loss)
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
        current = _random_start(clean, spec, generator)
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
                update = direction / _per_sample_norm(direction) * step_size
            current = _project(current + update, clean, spec)
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
    "sapgd": sapgd,
    "apgd-ce": apgd,
    "apgd-dlr": apgd,
    "autoattack": autoattack,
    "autoattack-rand": autoattack,
    "square": square,
}


# Operations whose derivative is zero almost everywhere: the usual input quantisers of a defence.
QUANTIZERS = frozenset({
    torch.round, torch.floor, torch.ceil, torch.trunc, torch.sign,
    torch.Tensor.round, torch.Tensor.floor, torch.Tensor.ceil, torch.Tensor.trunc, torch.Tensor.sign,
})


class StraightThroughQuantizers(TorchFunctionMode):
    """BPDA (Athalye et al. 2018) for quantising defences: inside this mode, rounding, floor, ceil,
    trunc and sign keep their forward values but pass the gradient through as the identity, so an
    attack sees the gradient of the network around the quantiser. ``used`` counts the calls."""

    def __init__(self) -> None:
        super().__init__()
        self.used = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        output = func(*args, **kwargs)
        if func in QUANTIZERS and isinstance(args[0], torch.Tensor) and args[0].requires_grad and not kwargs.get("out"):
            self.used += 1
            source = args[0]
            return source + (output - source).detach()
        return output


def uses_quantizers(model: nn.Module, images: torch.Tensor) -> bool:
    """Whether a forward of ``model`` on ``images`` differentiates through a quantising operation."""
    mode = StraightThroughQuantizers()
    with torch.enable_grad(), mode:
        model(images.detach().requires_grad_(True))
    return mode.used > 0


@contextmanager
def bpda_context(enabled: bool) -> Iterator[None]:
    """`StraightThroughQuantizers` when ``enabled``."""
    if not enabled:
        yield
        return
    with StraightThroughQuantizers():
        yield
