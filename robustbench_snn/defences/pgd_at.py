"""PGD adversarial training (Madry et al. 2018), of ANNs and SNNs (loss in `robustbench_snn.training.recipes`)."""

from __future__ import annotations

from pydantic import Field

from robustbench_snn.config import Strict
from robustbench_snn.defences.declarations import Deferred, RecipeInfo


class Parameters(Strict):
    at_eps: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="Linf radius [default: the dataset's threat model]",
        json_schema_extra={"cli": "eps"},
    )
    at_steps: int = Field(default=5, ge=1, le=10_000, description="PGD steps per batch")


RECIPE = RecipeInfo(
    name="pgd-at",
    summary="PGD adversarial training",
    reference={
        "paper": "Madry et al., Towards Deep Learning Models Resistant to Adversarial Attacks, ICLR 2018",
        "url": "https://arxiv.org/abs/1706.06083",
    },
    build=Deferred("robustbench_snn.training.recipes", "build_adversarial_training"),
    parameters=Parameters,
    dataset_defaults=lambda info: {"at_eps": info.linf_eps},
    family="adversarially trained {kind}",
)
