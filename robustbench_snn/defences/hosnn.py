"""HoSNN (Geng & Li, arXiv 2308.10373): threshold-adapting LIF neurons (`robustbench_snn.models.adaptive_threshold`),
FGSM-trained from a clean LIF SNN (`robustbench_snn.training.hosnn`)."""

from __future__ import annotations

from pydantic import Field

from robustbench_snn.config import Strict
from robustbench_snn.defences.declarations import Deferred, NeuronType, RecipeInfo


class NeuronParameters(Strict):
    threshold_tau: float = Field(
        gt=0, le=1e6, allow_inf_nan=False, description="the adaptation rates start at 1/THRESHOLD_TAU (the authors use 1.5 on MNIST)"
    )


NEURON = NeuronType(
    name="adaptive-threshold",
    summary="LIF whose threshold moves with its own potential (HoSNN's TA-LIF)",
    layer=Deferred("robustbench_snn.models.adaptive_threshold", "AdaptiveThresholdActivation"),
    parameters=NeuronParameters,
)


class Parameters(Strict):
    clean_model: str = Field(description="the registered clean-trained LIF SNN that gives weights and signatures")
    hosnn_eps: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="FGSM radius [default: a quarter of the dataset's threat model]",
        json_schema_extra={"cli": "eps"},
    )


RECIPE = RecipeInfo(
    name="hosnn",
    summary="threshold-adapting LIF neurons from a clean LIF SNN, FGSM-trained (Geng & Li 2023)",
    reference={
        "paper": "Geng & Li, HoSNN: Adversarially-Robust Homeostatic Spiking Neural Networks with Adaptive Firing "
        "Thresholds, arXiv 2308.10373",
        "url": "https://arxiv.org/abs/2308.10373",
        "protocol": "paper-hosnn",
    },
    build=Deferred("robustbench_snn.training.hosnn", "build"),
    parameters=Parameters,
    dataset_defaults=lambda info: {"hosnn_eps": info.linf_eps / 4},
    family="HoSNN",
)
