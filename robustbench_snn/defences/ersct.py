"""E-RSCT (Wu et al. 2024): an RSC SNN distilled from a trained ANN teacher (loss in `robustbench_snn.training.recipes`)."""

from __future__ import annotations

from pydantic import Field

from robustbench_snn.config import Strict
from robustbench_snn.defences.baseline import RECIPES as BASELINE
from robustbench_snn.defences.declarations import Deferred, RecipeInfo


class Parameters(Strict):
    teacher: str = Field(description="the registered ANN teacher of the same architecture")
    kd_weight: float = Field(default=1.0, ge=0, allow_inf_nan=False, description="weight of the distillation term")
    kd_temperature: float = Field(default=4.0, gt=0, allow_inf_nan=False, description="softening temperature")
    presynaptic_weight: float = Field(default=0.5, ge=0, allow_inf_nan=False, description="weight of the pre-synaptic loss")


RECIPE = RecipeInfo(
    name="ersct",
    summary="distillation from an ANN teacher (--teacher)",
    reference=BASELINE[1].reference,
    build=Deferred("robustbench_snn.training.recipes", "build_distillation"),
    parameters=Parameters,
    family="E-RSCT",
)
