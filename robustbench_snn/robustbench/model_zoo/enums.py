"""RobustBench's ``BenchmarkDataset`` and ``ThreatModel`` enums, with this benchmark's datasets added.

Every member RobustBench has is here under its name and value, so scripts that pass
``BenchmarkDataset.cifar_10`` or ``ThreatModel.Linf`` run unchanged; a threat model this benchmark
does not evaluate (the corruptions) is refused where it is used, with a clear error.
"""

from __future__ import annotations

from enum import Enum

from robustbench_snn.errors import UserError


class BenchmarkDataset(Enum):
    cifar_10 = "cifar10"
    cifar_100 = "cifar100"
    imagenet = "imagenet"
    fashion_mnist = "fashion-mnist"
    mnist = "mnist"


class ThreatModel(Enum):
    Linf = "Linf"
    L2 = "L2"
    corruptions = "corruptions"
    corruptions_3d = "corruptions_3d"


SUPPORTED_THREAT_MODELS = (ThreatModel.Linf, ThreatModel.L2)


def dataset_name(dataset: str | BenchmarkDataset) -> str:
    """The dataset's name in this benchmark, from an enum member, its value or its name (RobustBench
    scripts write both ``"cifar10"`` and ``"cifar_10"``)."""
    if isinstance(dataset, BenchmarkDataset):
        return dataset.value
    by_name = BenchmarkDataset.__members__.get(str(dataset))
    return by_name.value if by_name is not None else str(dataset)


def threat_model_name(threat_model: str | ThreatModel) -> str:
    """The norm of a supported threat model; a `UserError` naming the supported ones otherwise."""
    name = threat_model.value if isinstance(threat_model, ThreatModel) else str(threat_model)
    supported = [member.value for member in SUPPORTED_THREAT_MODELS]
    if name not in supported:
        raise UserError(f"threat model {name!r} is not supported here; choose one of {', '.join(supported)}")
    return name
