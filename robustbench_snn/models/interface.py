"""What the attack runner asks of a model, in writing.

A model is any module mapping images in [0, 1] to logits. It may also have these capabilities,
each a protocol the runner tests with ``isinstance`` (a module has a capability when it has its
attributes): `Classifier` and the wrapper of a user's SNN (`models.user.UserModel`) implement
`SpikingNetwork` and `RandomizedModel`; `certify.SmoothedClassifier` implements `SmoothedModel`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

import torch

from robustbench_snn.models.gradients import GradientMode


@runtime_checkable
class SpikingNetwork(Protocol):
    """A network with spiking layers whose backward an attack chooses (its forward never changes)."""

    spiking_layers: Sequence[torch.nn.Module]

    def using_gradient(self, gradient: GradientMode) -> AbstractContextManager: ...


@runtime_checkable
class RandomizedModel(Protocol):
    """A model whose forwards on one input may differ (a stochastic encoder, noisy neurons):
    attacked with EOT, decided over several draws, and re-seeded by the runner per batch
    (`reseed`) through its ``seed(seed)``, which restarts every random stream it owns, or, for a
    model written to the first form of this interface, its ``encoder.seed(seed)``."""

    stochastic: bool


@runtime_checkable
class GradientLimited(Protocol):
    """A model that supports only some SNN gradient modes (a user's single-step neurons support bptt only)."""

    supported_gradients: Sequence[str] | None


@runtime_checkable
class SmoothedModel(Protocol):
    """A randomized-smoothing classifier: decided by its own majority vote, certified per batch."""

    def predict(self, images: torch.Tensor) -> torch.Tensor: ...

    def certify(self, images: torch.Tensor, labels: torch.Tensor) -> list: ...

    def settings(self) -> dict: ...


def has_spiking_layers(model: torch.nn.Module) -> bool:
    """Whether ``model`` spikes: our LIF layers, spikingjelly neurons kept as the user wrote them or another library's."""
    return (
        (isinstance(model, SpikingNetwork) and bool(model.spiking_layers))
        or bool(getattr(model, "own_neurons", []))
        or bool(getattr(model, "library_neurons", []))
    )


def is_stochastic(model: torch.nn.Module) -> bool:
    """Whether ``model``'s forwards on one input may differ (`RandomizedModel` that says so)."""
    return isinstance(model, RandomizedModel) and bool(model.stochastic)


def _seeder(model: torch.nn.Module) -> Callable[[int], None] | None:
    """What restarts ``model``'s random streams: its ``seed``, else its encoder's (None: neither)."""
    for owner in (model, getattr(model, "encoder", None)):
        if callable(getattr(owner, "seed", None)):
            return owner.seed
    return None


def can_reseed(model: torch.nn.Module) -> bool:
    """Whether ``model`` has a way to restart its random streams (`reseed`)."""
    return _seeder(model) is not None


def reseed(model: torch.nn.Module, seed: int) -> None:
    """Restart every random stream of a stochastic ``model`` at ``seed``: its ``seed``, else its encoder's."""
    _seeder(model)(seed)


def is_smoothed(model: torch.nn.Module) -> bool:
    """Whether ``model`` is a randomized-smoothing classifier (`robustbench_snn.certify.SmoothedClassifier`)."""
    return isinstance(model, SmoothedModel)


def row_name(model: torch.nn.Module) -> str:
    """The name a model's rows carry: its card's, else the one it was given (a NIR graph's
    ``nir:<file>``, an adapted network's class), else its class's."""
    card = getattr(model, "card", None)
    return card.name if card is not None else getattr(model, "display_name", type(model).__name__)
