"""TGO (Wang et al., ICLR 2026): noisy LIF neurons (`robustbench_snn.models.noisy_neurons`) and a loss keeping
potentials away from the threshold (`robustbench_snn.training.tgo`)."""

from __future__ import annotations

from pydantic import Field

from robustbench_snn.config import Strict
from robustbench_snn.defences.declarations import Deferred, NeuronType, RecipeInfo


class NeuronParameters(Strict):
    noise_sigma: float = Field(
        gt=0, le=1e3, allow_inf_nan=False, description="standard deviation of the Gaussian noise on the potential at every firing decision"
    )


NEURON = NeuronType(
    name="noisy",
    summary="LIF firing on its potential plus Gaussian noise (TGO's noisy LIF)",
    layer=Deferred("robustbench_snn.models.noisy_neurons", "NoisyActivation"),
    parameters=NeuronParameters,
)


class Parameters(Strict):
    tgo_margin: float = Field(
        default=0.3, gt=0, allow_inf_nan=False, description="potentials closer than this to the threshold are penalised"
    )
    tgo_lambda: float = Field(default=1.0, ge=0, allow_inf_nan=False, description="the constraint's final weight, ramped up from 0")


RECIPE = RecipeInfo(
    name="tgo",
    summary="noisy LIF neurons and a loss keeping potentials away from the threshold (Wang et al. 2026)",
    reference={
        "paper": "Wang et al., Robust Spiking Neural Networks Against Adversarial Attacks (Threshold Guarding "
        "Optimization), ICLR 2026, arXiv 2602.20548",
        "url": "https://arxiv.org/abs/2602.20548",
        "protocol": "paper-tgo",
    },
    build=Deferred("robustbench_snn.training.tgo", "build"),
    parameters=Parameters,
    family="TGO",
)
