"""FEEL-SNN (Xu et al., NeurIPS 2024): frequency encoding and evolutionary-leak neurons.

The defence is in the model, not the loss: the frequency coding (`models.encoders.FrequencyEncoder`,
``--encoding frequency``) shows the network the image low-pass filtered ever more narrowly over the
steps, and every neuron learns its own leak factor per step (`models.evolving_leak`,
``--leak-init``). The recipe is the authors' "vanilla FEEL": plain cross-entropy by BPTT through
the training surrogate (theirs is the triangle of half-width 1, ``--surrogate triangle``); the
paper also combines FEEL with adversarial training, which the other recipes cover.
"""

from __future__ import annotations

from typing import Any

from robustbench_snn.errors import UserError
from robustbench_snn.models import Classifier, ModelSpec
from robustbench_snn.training.recipes import Recipe, RecipeInfo, cross_entropy


def _build(model: Classifier, spec: ModelSpec, dataset: str, config: Any, device: str) -> Recipe:
    if spec.kind != "snn" or spec.encoding != "frequency" or spec.neuron.leak_init is None:
        raise UserError("feel trains frequency-coded SNNs with learned leaks; pass --kind snn --encoding frequency --leak-init 1")
    return cross_entropy


RECIPE = RecipeInfo(
    name="feel",
    summary="frequency coding and learned per-step leaks, cross-entropy (Xu et al. 2024)",
    reference={
        "paper": "Xu et al., FEEL-SNN: Robust Spiking Neural Networks with Frequency Encoding and Evolutionary Leak Factor, NeurIPS 2024",
        "url": "https://github.com/MengtingXu1203/FEEL_SNN",
        "protocol": "paper-feel",
    },
    build=_build,
    family="FEEL-SNN",
)
