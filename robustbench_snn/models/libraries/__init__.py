"""SNNs written with other libraries: how the benchmark recognises their neurons, resets their
state between forwards and reads their spikes.

Each library is one module here that registers an `SNNLibrary` (found by package discovery the
first time the registry is asked). A library is looked for only when the user's program has
imported it already (it is in ``sys.modules``), so recognising a network never imports a library
it does not use, and each library stays an optional install.

The neurons of these libraries keep their own dynamics and surrogate: attacks differentiate them
by BPTT through the library's own surrogate, and members that need another rule (bptr, rga, act,
hart, pdsg, assg, or another surrogate) are listed as skipped with the reason.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SNNLibrary:
    """One library: its import name, its neuron classes, how to reset a network's state, and which
    part of a neuron's output is its spikes (snnTorch and Norse may return state beside them)."""

    name: str
    package: str
    neuron_classes: Callable[[], tuple[type, ...]]
    reset: Callable[[nn.Module], None]
    spikes: Callable[[object], torch.Tensor]

    @property
    def imported(self) -> bool:
        return self.package in sys.modules


LIBRARIES: dict[str, SNNLibrary] = {}
_loaded = False


def register_library(library: SNNLibrary) -> SNNLibrary:
    if library.name in LIBRARIES:
        raise TypeError(f"SNN library {library.name!r} is already registered")
    LIBRARIES[library.name] = library
    return library


def _libraries() -> list[SNNLibrary]:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
    return list(LIBRARIES.values())


def library_of(module: nn.Module) -> SNNLibrary | None:
    """The library whose neurons ``module`` (or a part of it) is, among those already imported."""
    for library in _libraries():
        if library.imported and isinstance(module, library.neuron_classes()):
            return library
    return None


def library_neurons(network: nn.Module) -> list[tuple[nn.Module, SNNLibrary]]:
    """Every neuron of an imported library in ``network``, with its library."""
    found = []
    for module in network.modules():
        library = library_of(module)
        if library is not None:
            found.append((module, library))
    return found


def reset_library_neurons(network: nn.Module) -> None:
    """Reset the state every library keeps inside ``network``'s neurons."""
    for library in {library.name: library for _, library in library_neurons(network)}.values():
        library.reset(network)
