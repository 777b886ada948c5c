"""What a defence declares: a neuron type and a training recipe, each with a parameter schema.

Both are plain data and import no torch, so the command line can list every registered neuron
type's and recipe's parameters as options (``rsc-bench train --help``) without loading a model.
A declaration names its implementation: a neuron type its layer class, a recipe the function that
builds its batch loss; either may be `Deferred`, imported when first needed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from robustbench_snn.config import Strict, describe
from robustbench_snn.errors import UserError


class Deferred:
    """A class or function of the package, imported when first used (so a declaration naming it stays torch-free)."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def resolve(self) -> Any:
        return getattr(importlib.import_module(self.module), self.name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"{self.module}.{self.name}"


class NoParameters(Strict):
    """The schema of a neuron type or recipe that takes no parameters of its own."""


def validated(schema: type[Strict], values: Mapping[str, Any], what: str) -> Strict:
    """``values`` checked by ``schema`` (a value given as None counts as not given), or a `UserError`
    naming ``what`` and, for a parameter it cannot do without, its option."""
    given = {name: value for name, value in values.items() if value is not None}
    for name, spec in schema.model_fields.items():
        if spec.is_required() and name not in given:
            raise UserError(f"{what} need --{name.replace('_', '-')}: {spec.description}")
    try:
        return schema.model_validate(given)
    except ValidationError as error:
        raise UserError(f"{what}:\n{describe(error)}") from None


@dataclass(frozen=True, kw_only=True)
class NeuronType:
    """A spiking neuron a model card can name: its name, what it is in a line, its own parameters
    (card fields beside the LIF's, e.g. HoSNN's ``threshold_tau``; each a ``rsc-bench train`` option)
    and its layer class, a `robustbench_snn.models.neurons.SpikingActivation` subclass (or its
    `Deferred` name), which says by itself which gradient modes it supports, whether NIR
    can carry it and how its spikes are counted."""

    name: str
    summary: str
    layer: type | Deferred
    parameters: type[Strict] = NoParameters

    def layer_class(self) -> type:
        """The layer class, imported now if the declaration deferred it."""
        return self.layer.resolve() if isinstance(self.layer, Deferred) else self.layer

    def parameters_of(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` as this neuron type's schema accepts them (defaults filled in)."""
        return validated(self.parameters, values, f"{self.name} neurons").model_dump()


# How a recipe's batch loss is built for a model: (model, spec, dataset, config, device) -> a batch loss.
Builder = Callable[[Any, Any, str, Any, str], Callable]


@dataclass(frozen=True, kw_only=True)
class RecipeInfo:
    """A training recipe, declared once: its name, what it does in a line (`rsc-bench names
    recipe`), the paper a card of a model trained with it cites (None: it depends on the model,
    `robustbench_snn.training.recipe_reference`), its own hyperparameters as a schema (each field
    a ``rsc-bench train`` option and a card hyperparameter; a field without a default is one the
    recipe cannot run without), the defaults that depend on the dataset (its threat model's radius,
    say: resolved before training, so a card records the value used), how it builds the batch loss
    for a model (checking that the recipe fits it), and the family its models are grouped in
    (``{kind}`` is the model's kind; None: by their coding)."""

    name: str
    summary: str
    reference: dict | None
    build: Builder
    parameters: type[Strict] = NoParameters
    dataset_defaults: Callable[[Any], dict[str, Any]] | None = None
    family: str | None = None

    def parameters_of(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` as this recipe's schema accepts them, defaults filled in (a parameter the
        dataset sets stays None until `dataset_defaults` fills it)."""
        return validated(self.parameters, values, f"the {self.name} recipe's settings").model_dump()
