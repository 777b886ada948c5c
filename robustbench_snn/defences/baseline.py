"""The undefended baseline: the LIF neuron and plain cross-entropy (``standard``, and ``rsc`` for RSC models)."""

from __future__ import annotations

from robustbench_snn.defences.declarations import Deferred, NeuronType, RecipeInfo

NEURON = NeuronType(
    name="lif",
    summary="leaky integrate-and-fire (spikingjelly's LIFNode with decay input), fixed threshold",
    layer=Deferred("robustbench_snn.models.neurons", "SpikingActivation"),
)

RECIPES = (
    RecipeInfo(
        name="standard", summary="cross-entropy", reference=None, build=Deferred("robustbench_snn.training.recipes", "build_standard")
    ),
    RecipeInfo(
        name="rsc",
        summary="cross-entropy, for RSC models",
        reference={
            "paper": "Wu et al., RSC-SNN: Exploring the Trade-off Between Adversarial Robustness and "
            "Accuracy in Spiking Neural Networks via Randomized Smoothing Coding, ACM MM 2024",
            "url": "https://arxiv.org/abs/2407.20099",
        },
        build=Deferred("robustbench_snn.training.recipes", "build_rsc"),
    ),
)
