"""SNN-RAT (Ding et al., NeurIPS 2022): FGSM training with Parseval weight retraction (`robustbench_snn.training.snn_rat`)."""

from __future__ import annotations

from pydantic import Field

from robustbench_snn.config import Strict
from robustbench_snn.defences.declarations import Deferred, RecipeInfo


class Parameters(Strict):
    rat_eps: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="FGSM radius [default: a quarter of the dataset's threat model]",
        json_schema_extra={"cli": "eps"},
    )
    parseval_beta: float = Field(default=0.004, gt=0, allow_inf_nan=False, description="Parseval retraction rate")


RECIPE = RecipeInfo(
    name="snn-rat",
    summary="FGSM training with Parseval weight retraction (Ding et al. 2022)",
    reference={
        "paper": "Ding et al., SNN-RAT: Robustness-enhanced Spiking Neural Network through Regularized Adversarial Training, NeurIPS 2022",
        "url": "https://openreview.net/forum?id=xwBdjfKt7_W",
        "protocol": "paper-snn-rat",
    },
    build=Deferred("robustbench_snn.training.snn_rat", "build"),
    parameters=Parameters,
    dataset_defaults=lambda info: {"rat_eps": info.linf_eps / 4},
    family="SNN-RAT",
)
