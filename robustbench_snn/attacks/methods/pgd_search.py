"""Targeted PGD, then a random search on the exact CW margin from where PGD stopped.

Issue 40's fourth red team broke 12 survivors of `reliable` v12 (on the direct SNN, FEEL-SNN and the
PGD-trained SNN) that no gradient attack it tried reached: surrogate PGD brought their margins to
0.1 to 0.5 and stalled there, where the surrogate's gradient no longer points across the true
model's boundary, and a search on the true model's margin, from PGD's end point, crossed it.
Square searches the same way but from the clean input, so its budget is spent far from the boundary.
Each restart runs PGD toward each of the three nearest wrong classes from its own random start and
searches from the best of their end points: where a surrogate stalls, PGD's end margin varies more
across random starts than the search gains, and the red team searched from the best of several
starts per class. In a protocol the first restart also weighs the best point the members before it
reached (`Attack.warm_starts`: a 2,000-step member's end point is often closer to the boundary than
a 200-step restart's); only the first, because the runner's best point
includes this member's own last search, so later restarts would start again where it stalled (on
the direct SNN's sample 76 every restart searched from one point, at margin -0.21, and stayed there).
Restarts that double are new starts at the same classes.
"""

from __future__ import annotations

import torch

from robustbench_snn.attacks.attack import Attack, register_attack
from robustbench_snn.attacks.methods.pgd import pgd
from robustbench_snn.attacks.primitives import ExpectedLogits, margin_loss
from robustbench_snn.seeds import restart_seed

# The wrong classes each restart's PGD aims at, most likely first at the clean input.
NEAREST_CLASSES = 3
# Proposals per sample in each search iteration, scored in one batch.
PROPOSALS = 16
# The most pixels a scattered proposal moves (the red team's 1 to 24).
MOST_SCATTERED_PIXELS = 24


@register_attack
class PGDSearch(Attack):
    name = "pgd-search"
    description = (
        f"targeted PGD toward each of the {NEAREST_CLASSES} most likely wrong classes from its own random start, then a "
        "random search on the exact CW margin from the best end point (in the first restart, or the best point the members "
        "before it reached), `queries` iterations; each restart new starts at the same classes (Linf)"
    )
    schedules_steps = True
    warm_starts = True
    # 2: the search starts from the runner's best point where that is better than PGD's end point, and
    # draws only the moves it proposes. 3: every restart aims PGD at each of the nearest classes and
    # searches from the best end point, the members' best point only in the first restart (2 aimed
    # restart r at the r-th class alone, and offered the best point to every restart).
    version = 3

    def check(self, spec) -> None:
        super().check(spec)
        if spec.norm != "Linf":
            raise ValueError(f"{self.name}'s search moves pixels to the corners of the Linf ball; it takes norm Linf only")

    def budget_label(self, spec) -> str:
        return f"-{spec.steps}+{spec.queries}"

    def perturb(self, model, spec, images, labels, seed, draws, starts=None):
        scores = ExpectedLogits(model, draws)
        generator = torch.Generator().manual_seed(seed)
        adversarial = images.clone()
        fooled = torch.zeros(len(images), dtype=torch.bool, device=images.device)
        for restart in range(spec.restarts):
            index = (~fooled).nonzero().squeeze(1)
            if index.numel() == 0:
                break
            seed_of_restart = restart_seed(seed, restart)
            ends = [
                pgd(
                    model, toward_class(spec, rank), images[index], labels[index], restart_seed(seed_of_restart, rank), draws, targeted=True
                )
                for rank in range(NEAREST_CLASSES)
            ]
            if starts is not None and spec.first_restart + restart == 0:
                ends.append(starts[index])
            start = best_start(scores, ends, labels[index])
            found, margins = margin_search(scores, images[index], start, labels[index], spec.eps, spec.queries, generator)
            adversarial[index] = found
            fooled[index] = margins > 0
        return adversarial.detach()


def toward_class(spec, rank: int):
    """One PGD run of ``spec`` on the CW margin toward the wrong class ranked ``rank`` (0: the most likely)."""
    return spec.one_restart(rank).model_copy(update={"loss": "cw"})


@torch.no_grad()
def best_start(scores: torch.nn.Module, candidates: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Per sample, the candidate of largest CW margin (the earliest at a tie)."""
    margins = torch.stack([margin_loss(scores(candidate), labels, "cw") for candidate in candidates])
    which = margins.argmax(0)
    stacked = torch.stack(candidates)
    return stacked[which, torch.arange(len(labels), device=labels.device)]


@torch.no_grad()
def margin_search(
    scores: torch.nn.Module,
    clean: torch.Tensor,
    start: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    iterations: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy random search in the Linf ball around ``clean`` from ``start``, on the CW margin
    ``max_{j != y} z_j - z_y`` (a sample is fooled above 0): each iteration scores `PROPOSALS`
    moves per sample and keeps the best when it is no worse (moves along a plateau are taken, as
    the red team found they must be), until the sample is fooled. Returns the inputs and margins."""
    current = start.clone()
    margins = margin_loss(scores(current), labels, "cw")
    largest_patch = max(1, min(clean.shape[-2:]) // 4)
    for iteration in range(iterations):
        index = (margins <= 0).nonzero().squeeze(1)
        if index.numel() == 0:
            break
        patch = max(1, round(largest_patch * (1 - iteration / iterations)))
        proposals = propose(current[index], clean[index], eps, patch, generator)
        proposed = margin_loss(scores(proposals.flatten(0, 1)), labels[index].repeat_interleave(PROPOSALS), "cw").view(-1, PROPOSALS)
        best, which = proposed.max(1)
        better = best >= margins[index]
        chosen = proposals[torch.arange(len(index)), which]
        current[index[better]] = chosen[better]
        margins[index[better]] = best[better]
    return current, margins


def propose(current: torch.Tensor, clean: torch.Tensor, eps: float, patch: int, generator: torch.Generator) -> torch.Tensor:
    """`PROPOSALS` moves of each sample, ``[n, PROPOSALS, *image]``: the first half set a random
    ``patch`` x ``patch`` square to a corner of the ball (one sign for the square or one per pixel,
    as Square does), the second half set 1 to `MOST_SCATTERED_PIXELS` scattered pixels to ``clean``
    or either corner."""
    n, shape = len(current), current.shape[1:]
    height, width = shape[-2:]
    half = PROPOSALS // 2

    def uniform(*size: int) -> torch.Tensor:
        return torch.rand(size, generator=generator).to(current)

    rows, cols = torch.arange(height, device=current.device), torch.arange(width, device=current.device)
    top = (uniform(n, half) * (height - patch + 1)).floor().view(n, half, 1, 1)
    left = (uniform(n, half) * (width - patch + 1)).floor().view(n, half, 1, 1)
    square = ((rows.view(1, 1, -1, 1) - top).clamp(min=-1) // patch == 0) & ((cols.view(1, 1, 1, -1) - left).clamp(min=-1) // patch == 0)
    per_pixel = uniform(n, half, 1, 1, 1) < 0.5
    signs = torch.where(per_pixel, uniform(n, half, *shape), uniform(n, half, shape[0], 1, 1)).round() * 2 - 1
    squares = torch.where(square.unsqueeze(2), clean.unsqueeze(1) + eps * signs, current.unsqueeze(1))
    scattered_count = PROPOSALS - half
    counts = (uniform(n, scattered_count, 1, 1, 1) * MOST_SCATTERED_PIXELS).floor() + 1
    scattered = uniform(n, scattered_count, 1, height, width) < counts / (height * width)
    levels = (uniform(n, scattered_count, *shape) * 3).floor() - 1
    pixels = torch.where(scattered, clean.unsqueeze(1) + eps * levels, current.unsqueeze(1))
    return torch.cat([squares, pixels], dim=1).clamp(0.0, 1.0)
