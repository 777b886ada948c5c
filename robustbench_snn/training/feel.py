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
from robustbench_snn.training.recipes import Recipe, cross_entropy


def build(model: Classifier, spec: ModelSpec, dataset: str, config: Any, device: str) -> Recipe:
    if spec.kind != "snn" or spec.encoding != "frequency" or spec.neuron.type != "evolving-leak":
        raise UserError("feel trains frequency-coded SNNs with learned leaks; pass --kind snn --encoding frequency --leak-init 1")
    return cross_entropy
