"""What every attack shares: EOT over encoder draws, losses, input gradients, and the threat model's
projection, random start and ascent step."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from robustbench_snn.attack_fields import AttackFields
from robustbench_snn.models.estimators import score_function_surrogate
from robustbench_snn.models.neurons import holding_sharpness, uses_adaptive_sharpness

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


def wrong_class_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``logits`` with each sample's true class at -inf, so that only its wrong classes compete."""
    return logits.scatter(1, labels.unsqueeze(1), float("-inf"))


def margin_loss(logits: torch.Tensor, labels: torch.Tensor, loss: str, toward: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample margin to maximise: CW ``max_{j != y} z_j - z_y`` (``z_t - z_y`` toward the wrong
    class t of each sample given in ``toward``: a targeted attack), or DLR (Croce and Hein 2020),
    the same margin divided by the gap between the largest and third-largest logit."""
    true = logits.gather(1, labels.unsqueeze(1)).squeeze(1)
    if toward is not None:
        others = logits.gather(1, toward.unsqueeze(1)).squeeze(1)
    else:
        others = wrong_class_logits(logits, labels).amax(1)
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


def scores_its_draws(model: nn.Module) -> bool:
    """Whether ``model``'s encoder differentiates its sampling by the score-function estimator."""
    gradient = getattr(getattr(model, "encoder", None), "current_estimator", None)
    return gradient is not None and gradient.estimator == "score-function"


def score_function_gradient(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, draws: int, loss: str, toward: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`loss_gradient` by the score-function estimator: every draw's logits with the log-probability
    of its sample (left by the encoder), then cross-entropy per draw, or a margin on the mean logits
    whose gradient is the score-function estimate of ``d E[logits] / dx``."""
    images = images.detach().requires_grad_(True)
    logits, log_prob = [], []
    for count in draw_chunks(draws, images):
        logits.append(model(repeated(images, count)).view(count, images.shape[0], -1))
        log_prob.append(model.encoder.last_log_prob.view(count, images.shape[0]))
    logits, log_prob = torch.cat(logits), torch.cat(log_prob)
    if loss == "ce":
        losses = F.cross_entropy(logits.flatten(0, 1), repeated(labels, draws), reduction="none").view(draws, -1)
        objective = score_function_surrogate(losses, log_prob).sum() / draws
    else:
        objective = margin_loss(score_function_surrogate(logits, log_prob).mean(0), labels, loss, toward).sum()
    return input_gradient(objective, images), logits.detach().mean(0)


def loss_gradient(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, draws: int, loss: str = "ce", toward: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """EOT gradient of the loss and the draws' mean logits.

    Cross-entropy: ``(1/k) sum_i grad L(f_i(x))``, one backward per forward. A margin loss is taken
    on the mean logits ``(1/k) sum_i f_i(x)``, so all draws stay in one graph until its backward
    (toward each sample's class in ``toward`` for a targeted margin, `margin_loss`).
    Under the score-function estimator the gradient is `score_function_gradient`'s.
    """
    if scores_its_draws(model):
        return score_function_gradient(model, images, labels, draws, loss, toward)
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
        gradient = input_gradient(margin_loss(mean_logits, labels, loss, toward).sum(), images)
    return gradient, mean_logits.detach()


def per_sample_norm(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (tensor.dim() - 1)))


def project(candidate: torch.Tensor, clean: torch.Tensor, spec: AttackFields) -> torch.Tensor:
    delta = candidate - clean
    if spec.norm == "Linf":
        delta = delta.clamp(-spec.eps, spec.eps)
    else:
        delta = delta * (spec.eps / per_sample_norm(delta)).clamp(max=1.0)
    return (clean + delta).clamp(0.0, 1.0)


def random_start(clean: torch.Tensor, spec: AttackFields, generator: torch.Generator) -> torch.Tensor:
    noise = torch.rand(clean.shape, generator=generator).to(clean) * 2 - 1
    if spec.norm == "L2":
        radius = torch.rand((clean.shape[0],), generator=generator).to(clean).view(-1, *([1] * (clean.dim() - 1)))
        noise = noise / per_sample_norm(noise) * radius
    return project(clean + spec.eps * noise, clean, spec)


def ascent_step(images: torch.Tensor, gradient: torch.Tensor, step_size: float, norm: str) -> torch.Tensor:
    if norm == "Linf":
        return images + step_size * gradient.sign()
    return images + step_size * gradient / per_sample_norm(gradient)
