"""Low-latency leaky SNNs (Sharmin et al., ECCV 2020): robustness from the coding, not the loss.

The paper attributes an SNN's robustness to the discrete Poisson input coding, to few timesteps
and to a strong leak; the recipe is plain cross-entropy by BPTT, for Poisson-coded SNNs only,
whose card then names the paper and its evaluation. Pick the timesteps and leak with
``--timesteps`` and ``--tau`` (a smaller tau leaks more).
"""

from __future__ import annotations

from typing import Any

from robustbench_snn.errors import UserError
from robustbench_snn.models import Classifier, ModelSpec
from robustbench_snn.training.recipes import Recipe, cross_entropy


def build(model: Classifier, spec: ModelSpec, dataset: str, config: Any, device: str) -> Recipe:
    if spec.kind != "snn" or spec.encoding != "poisson":
        raise UserError("low-latency trains Poisson-coded SNNs; pass --kind snn --encoding poisson")
    return cross_entropy
