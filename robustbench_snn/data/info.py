"""What a dataset is to the benchmark (`DatasetInfo`), and the error its readers raise when its files are missing."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from torch.utils.data import Dataset

from robustbench_snn.errors import DatasetNotFoundError

# The package's own data folder (Fashion-MNIST's test split ships in it).
EMBEDDED_DIR = Path(__file__).parent


@dataclass(frozen=True, kw_only=True)
class DatasetInfo:
    """What a model needs to know about a dataset: shape, classes and normalisation."""

    name: str
    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    linf_eps: float
    l2_eps: float
    how_to_get: str
    # ``loader(info, split, root, download)``: the split's items as (image in [0, 1], label)
    loader: Callable[[DatasetInfo, str, Path, bool], Dataset] = field(compare=False, repr=False)

    def default_eps(self, norm: str) -> float:
        """The radius of the dataset's standard threat model for ``norm`` (Linf or L2)."""
        return self.linf_eps if norm == "Linf" else self.l2_eps

    def largest_eps(self, norm: str) -> float:
        """The radius past which a ball around any image in [0, 1] holds every image (1 in Linf, the
        diagonal of the image cube in L2): a larger eps means nothing more."""
        return 1.0 if norm == "Linf" else math.sqrt(math.prod(self.input_shape))


def not_found_error(info: DatasetInfo, split: str, looked_in: list[Path], reason: str = "") -> DatasetNotFoundError:
    places = "\n".join(f"  - {place}" for place in looked_in)
    detail = f" ({reason})" if reason else ""
    return DatasetNotFoundError(
        f"dataset {info.name!r} ({split} split) was not found{detail}.\nLooked in:\n{places}\n"
        f"To get it: {info.how_to_get}. Point --data-dir or $RSC_BENCH_DATA at the root."
    )
