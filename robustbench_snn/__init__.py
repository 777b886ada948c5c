"""robustbench-snn: a benchmark for the adversarial robustness of spiking neural networks.

The public API is loaded on first use, so that importing the package (and ``rsc-bench --help``)
does not import torch.
"""

from __future__ import annotations

import importlib

__all__ = ["ReadOut", "attack", "benchmark", "export_nir", "list_cards", "load_model", "load_nir", "load_test_set", "measure_energy"]
__version__ = "0.1.0"

_HOMES = {
    "ReadOut": "robustbench_snn.models.user",
    "attack": "robustbench_snn.evaluation",
    "benchmark": "robustbench_snn.evaluation",
    "export_nir": "robustbench_snn.models.nir_graphs",
    "list_cards": "robustbench_snn.registry",
    "load_model": "robustbench_snn.registry",
    "load_nir": "robustbench_snn.models.nir_graphs",
    "load_test_set": "robustbench_snn.data",
    "measure_energy": "robustbench_snn.energy",
}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
