"""SR, sparse gradient regularisation (Liu et al., ICML 2024): the loss in `robustbench_snn.training.sr`."""

from __future__ import annotations

from pydantic import Field

from robustbench_snn.config import Strict
from robustbench_snn.defences.declarations import Deferred, RecipeInfo


class Parameters(Strict):
    sr_lambda: float = Field(
        default=0.001,
        ge=0,
        allow_inf_nan=False,
        description="weight of the squared L1 norm of the true-class probability's input gradient "
        "(the authors' code once defaulted to 0.001)",
    )
    sr_step: float = Field(
        default=0.01, gt=0, le=1, allow_inf_nan=False, description="the finite difference's step along the gradient's sign"
    )


RECIPE = RecipeInfo(
    name="sr",
    summary="sparse input gradients by a finite-difference regulariser (Liu et al. 2024)",
    reference={
        "paper": "Liu et al., Enhancing Adversarial Robustness in SNNs with Sparse Gradients, ICML 2024, arXiv 2405.20355",
        "url": "https://arxiv.org/abs/2405.20355",
        "protocol": "paper-sr",
    },
    build=Deferred("robustbench_snn.training.sr", "build"),
    parameters=Parameters,
    family="SR",
)
