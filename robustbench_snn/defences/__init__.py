"""Defences as declared units: the neuron types and training recipes a model card can name.

A published defence is a neuron module (a `NeuronType`: its parameters and its layer class), a
recipe module (a `RecipeInfo`: its parameters and how it builds its loss) and an attack preset
reproducing the paper's evaluation. The built-in ones are declared a file each in this package,
their torch code in `robustbench_snn.models` and `robustbench_snn.training`; a plug-in package
registers its own through the entry-point groups ``robustbench_snn.neurons`` and
``robustbench_snn.recipes`` (`register_neuron`, `register_recipe`), with no edit to this package.
Every parameter is a ``rsc-bench train`` option, generated from the schemas (`parameter_owners`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from robustbench_snn.defences.declarations import Deferred, NeuronType, NoParameters, RecipeInfo
from robustbench_snn.errors import UserError
from robustbench_snn.plugins import Registry

__all__ = [
    "NEURONS",
    "RECIPES",
    "Deferred",
    "NeuronType",
    "NoParameters",
    "RecipeInfo",
    "neuron_type_of",
    "parameter_owners",
    "register_neuron",
    "register_recipe",
]

# The neuron type a card without a ``type`` and without another type's parameters has.
DEFAULT_NEURON = "lif"


def register_neuron(declaration: NeuronType) -> NeuronType:
    """Make a neuron type available by its name (cards, ``rsc-bench train --neuron``)."""
    _refuse_shared_parameters(declaration.name, declaration.parameters.model_fields)
    return NEURONS.register(declaration.name, declaration)


def register_recipe(declaration: RecipeInfo) -> RecipeInfo:
    """Make a recipe available by its name (``rsc-bench train --recipe``, cards)."""
    _refuse_shared_parameters(declaration.name, declaration.parameters.model_fields)
    return RECIPES.register(declaration.name, declaration)


def _refuse_shared_parameters(owner: str, names: Mapping[str, Any]) -> None:
    """One option per parameter name: a second declaration of a name another owns is refused."""
    for name in names:
        for registry in (NEURONS, RECIPES):
            for other, declaration in registry._entries.items():
                if other != owner and name in declaration.parameters.model_fields:
                    raise TypeError(f"parameter {name!r} of {owner!r} is already declared by the {registry.kind} {other!r}")


def _register_built_in_neurons() -> None:
    from robustbench_snn.defences import baseline, feel, hosnn, tgo  # a file each

    for declaration in (baseline.NEURON, hosnn.NEURON, tgo.NEURON, feel.NEURON):
        register_neuron(declaration)


def _register_built_in_recipes() -> None:
    from robustbench_snn.defences import baseline, ersct, feel, hosnn, low_latency, pgd_at, snn_rat, sr, tgo  # a file each

    for declaration in (
        *baseline.RECIPES,
        ersct.RECIPE,
        pgd_at.RECIPE,
        snn_rat.RECIPE,
        low_latency.RECIPE,
        hosnn.RECIPE,
        tgo.RECIPE,
        feel.RECIPE,
        sr.RECIPE,
    ):
        register_recipe(declaration)


# Every neuron type and recipe by name, in the order `rsc-bench train --help` lists them: the
# built-in ones, then those of installed plug-in packages.
NEURONS: Registry[NeuronType] = Registry("neuron type", "robustbench_snn.neurons", _register_built_in_neurons)
RECIPES: Registry[RecipeInfo] = Registry("recipe", "robustbench_snn.recipes", _register_built_in_recipes)


def parameter_owners() -> dict[str, tuple[NeuronType | RecipeInfo, Any]]:
    """Every neuron type's and recipe's own parameter: its declaration and its schema field."""
    return {
        name: (declaration, spec)
        for registry in (NEURONS, RECIPES)
        for declaration in registry.values()
        for name, spec in declaration.parameters.model_fields.items()
    }


def neuron_type_of(values: Mapping[str, Any], named: str | None = None) -> str:
    """The neuron type of a neuron whose own parameters are ``values`` (those given as None are
    not given): ``named`` if given, checked against the parameters; else the one type that
    declares them all (`DEFAULT_NEURON` when there are none)."""
    given = {name for name, value in values.items() if value is not None}
    if named is not None:
        declared = NEURONS.lookup(named).parameters.model_fields
        foreign = sorted(given - set(declared))
        if foreign:
            raise UserError(f"{', '.join(foreign)}: not a parameter of {named} neurons" + _owned_by(foreign))
        return named
    if not given:
        return DEFAULT_NEURON
    owners = [name for name, declaration in NEURONS.items() if given <= set(declaration.parameters.model_fields)]
    if len(owners) != 1:
        raise UserError(f"no one neuron type takes {', '.join(sorted(given))}" + _owned_by(sorted(given)))
    return owners[0]


def _owned_by(names: list[str]) -> str:
    """What each of ``names`` belongs to, where a neuron type declares it."""
    return "".join(f"; {name} is a parameter of {owner} neurons" for name in names if (owner := _owner(name)))


def _owner(parameter: str) -> str | None:
    return next((name for name, declaration in NEURONS.items() if parameter in declaration.parameters.model_fields), None)
