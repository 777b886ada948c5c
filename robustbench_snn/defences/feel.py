"""FEEL-SNN (Xu et al., NeurIPS 2024): frequency coding and neurons with a learned leak per step
(`robustbench_snn.models.evolving_leak`), trained by cross-entropy (`robustbench_snn.training.feel`)."""

from __future__ import annotations

from pydantic import Field

from robustbench_snn.config import Strict
from robustbench_snn.defences.declarations import Deferred, NeuronType, RecipeInfo


class NeuronParameters(Strict):
    leak_init: float = Field(
        gt=0, le=1, allow_inf_nan=False, description="each neuron's leak factor per step starts here (the authors start at 1)"
    )


NEURON = NeuronType(
    name="evolving-leak",
    summary="integrate-and-fire with a learned leak factor per neuron and step (FEEL-SNN's evolutionary leak)",
    layer=Deferred("robustbench_snn.models.evolving_leak", "EvolvingLeakActivation"),
    parameters=NeuronParameters,
)

RECIPE = RecipeInfo(
    name="feel",
    summary="frequency coding and learned per-step leaks, cross-entropy (Xu et al. 2024)",
    reference={
        "paper": "Xu et al., FEEL-SNN: Robust Spiking Neural Networks with Frequency Encoding and Evolutionary Leak Factor, NeurIPS 2024",
        "url": "https://github.com/MengtingXu1203/FEEL_SNN",
        "protocol": "paper-feel",
    },
    build=Deferred("robustbench_snn.training.feel", "build"),
    family="FEEL-SNN",
)
