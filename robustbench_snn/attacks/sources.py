"""Source models: what an attack crafted on another model (``source:``) is crafted on.

A source is a registered model's name, one of the named kinds below, or several joined by ``+``
(an ensemble of their mean logits). Each named kind is declared once, by `source_kind`, with how it
is found for a target: ``expectation``, the target's own weights fed its coding's expectation (a
deterministic relative; white-box); ``twin``, the ANN the caller passes, else the target's
registered ANN twin, else for an unregistered model the dataset's reference ANN.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from robustbench_snn.attacks.attack import EXPECTATION_SOURCE
from robustbench_snn.attacks.protocol import AttackSpec
from robustbench_snn.errors import UserError

logger = logging.getLogger(__name__)

# What ``twin`` may be: the caller's own ANN, a registered name, or None (the registry's choice).
Twin = nn.Module | str | None


class LogitEnsemble(nn.Module):
    """The mean logits of several source models: one source for a transfer from all of them."""

    def __init__(self, models: list[nn.Module]) -> None:
        super().__init__()
        self.models = nn.ModuleList(models)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.stack([model(images) for model in self.models]).mean(0)


@dataclass(frozen=True)
class SourceRequest:
    """The target a source is found for, and what the caller passed."""

    model: nn.Module
    device: str
    seed: int
    dataset: str | None
    twin: Twin


class MissingSource(Exception):
    """A named kind of source that the target does not have, and why."""


# A named kind finds, for a target, the source's name as stored and its model, or None for the
# registered model of that name; it raises `MissingSource` when the target has none.
SOURCE_KINDS: dict[str, Callable[[SourceRequest], tuple[str, nn.Module | None]]] = {}


def source_kind(name: str) -> Callable:
    """Declare the named source kind ``name``."""

    def declare(find: Callable[[SourceRequest], tuple[str, nn.Module | None]]) -> Callable:
        SOURCE_KINDS[name] = find
        return find

    return declare


@source_kind(EXPECTATION_SOURCE)
def _expectation(request: SourceRequest) -> tuple[str, nn.Module | None]:
    relative = request.model.expectation_relative() if hasattr(request.model, "expectation_relative") else None
    if relative is None:
        raise MissingSource("the model is deterministic: no stochastic coding or noisy neurons to take the expectation of")
    return EXPECTATION_SOURCE, relative


@source_kind("twin")
def _twin(request: SourceRequest) -> tuple[str, nn.Module | None]:
    from robustbench_snn.registry import find_ann_twin, reference_ann

    if isinstance(request.twin, nn.Module):
        return getattr(request.twin, "display_name", type(request.twin).__name__), request.twin.to(request.device).eval()
    if isinstance(request.twin, str):
        return request.twin, None
    card = getattr(request.model, "card", None)
    found = find_ann_twin(card) if card is not None else reference_ann(request.dataset) if request.dataset else None
    if found is None:
        raise MissingSource(f"no registered ANN twin of {card.name if card else 'this unregistered model'} (pass twin=)")
    if card is None:
        logger.info("transfer from %s, the dataset's reference ANN (pass twin= for your own ANN)", found.name)
    return found.name, None


def resolve_sources(
    model: nn.Module, members: list[AttackSpec], device: str, seed: int, dataset: str | None = None, twin: Twin = None
) -> tuple[list[AttackSpec], dict[str, nn.Module], list[str]]:
    """Load the source model of each member crafted on one (a named kind, a registered name, or
    several joined by '+': an ensemble of those that exist); a member whose source does not exist
    is skipped, and with it alone, refused."""
    from robustbench_snn.registry import load_model

    request = SourceRequest(model, device, seed, dataset, twin)
    sources: dict[str, nn.Module] = {}
    kept, skipped = [], []

    def load(name: str) -> tuple[str, nn.Module | str]:
        """A single source's name as stored and the model, or why it does not exist."""
        try:
            stored, found = SOURCE_KINDS[name](request) if name in SOURCE_KINDS else (name, None)
        except MissingSource as missing:
            return name, str(missing)
        if found is None:
            found = sources[stored] if stored in sources else load_model(stored, device=device, seed=seed)
        return stored, found

    for member in members:
        if member.source is None:
            kept.append(member)
            continue
        parts = [load(name) for name in member.source.split("+")]
        found = [(name, source) for name, source in parts if isinstance(source, nn.Module)]
        missing = [f"{name}: {source}" for name, source in parts if isinstance(source, str)]
        if missing:
            logger.info("%s: sources not found: %s", member.label(), "; ".join(missing))
        if not found:
            reason = "; ".join(source for _, source in parts if isinstance(source, str))
            if len(members) == 1:
                raise UserError(f"cannot run {member.label()}: {reason}" + ("; pass --source NAME" if "twin" in member.source else ""))
            logger.warning("skipping %s: %s", member.label(), reason)
            skipped.append(f"{member.label()}: {reason}")
            continue
        for name, source in found:
            sources.setdefault(name, source)
        name = "+".join(name for name, _ in found)
        if len(found) > 1:
            sources.setdefault(name, LogitEnsemble([source for _, source in found]).eval())
        kept.append(member.model_copy(update={"source": name}))
    return kept, sources, skipped
