"""The fields of one attack member and the protocol options that override them: their types,
bounds, defaults and help, declared once and without torch.

`robustbench_snn.attacks.protocol.AttackSpec` is these fields with the registered names checked
(attacks, gradient modes, surrogates, estimators), and the command line makes one option per field
from them (`robustbench_snn.cli.options.attack_options`), so ``rsc-bench --help`` loads no torch and
a new field is an option everywhere without being written again.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from robustbench_snn.config import Strict

# The gradient mode a member uses unless it names another (`robustbench_snn.models.gradients`).
DEFAULT_GRADIENT_MODE = "bptt"


def _eps(description: str, **bounds) -> Field:
    """A budget-like field, given on the command line as a number or a fraction such as 8/255."""
    return Field(default=None, allow_inf_nan=False, description=description, json_schema_extra={"cli": "eps"}, **bounds)


def _registered(kind: str, description: str, default: str | None = None) -> Field:
    """A field naming an entry of the registry of ``kind`` (the command line offers its names)."""
    return Field(default=default, description=description, json_schema_extra={"cli": kind})


class AttackFields(Strict):
    """One attack's threat model, budget and gradient settings (the attack's name is checked by `AttackSpec`)."""

    attack: str = Field(description="The registered attack this member runs.")
    norm: Literal["Linf", "L2"] = Field(default="Linf", description="Threat model norm.")
    eps: float | None = _eps("Perturbation budget, e.g. 0.1 or 8/255 [default: the dataset's threat model].", ge=0)
    steps: int = Field(default=10, ge=1, le=10_000, description="Attack iterations.")
    step_size: float | None = _eps(
        "PGD step size, a cosine schedule's first [default: 2.5 eps / steps; eps / 2 under a cosine schedule].", gt=0
    )
    step_schedule: Literal["constant", "cosine"] = Field(
        default="constant",
        description="PGD's step over its iterations: constant, or decaying from the step size to zero along a half cosine "
        "[default: constant].",
    )
    random_start: bool = Field(default=True, description="Start PGD at a random point in the eps-ball.")
    restarts: int = Field(default=1, ge=1, le=100, description="Random restarts.")
    grad: str = _registered("grad", "SNN gradient mode (see docs/attacks.md, or `rsc-bench names grad`).", default=DEFAULT_GRADIENT_MODE)
    surrogate: str | None = _registered("surrogate", "Surrogate derivative for --grad bptt [default: the model's training surrogate].")
    surrogate_alpha: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="Surrogate sharpness.")
    surrogate_alpha_last: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="The last spiking layer's surrogate sharpness, where it differs from --surrogate-alpha (needs --surrogate).",
    )
    eot: int = Field(default=1, ge=1, le=1024, description="EOT draws averaged per gradient (stochastic models).")
    queries: int = Field(
        default=1000, ge=1, le=100_000, description="Query budget of the Square attack; the random search's iterations of pgd-search."
    )
    source: str | None = Field(
        default=None,
        description="Craft the attack on a source model and try it on the target: a registered name, twin, or expectation "
        "(the target's weights fed its coding's mean); required by transfer, taken by every gradient attack.",
    )
    loss: Literal["ce", "cw", "dlr"] = Field(
        default="ce", description="Loss of PGD, SA-PGD, FGSM and transfer: cross-entropy, or the CW or DLR margin on EOT-averaged logits."
    )
    bpda: bool = Field(
        default=False, description="Give rounding, floor, ceil, trunc and sign an identity backward (BPDA against quantising defences)."
    )
    estimator: str | None = _registered(
        "estimator",
        "Gradient estimator through a stochastic coding's sampling, where the coding admits it "
        "[default: the coding's own: straight-through for Poisson, pathwise for RSC].",
    )
    temperature: float | None = Field(
        default=None,
        gt=0,
        le=100,
        allow_inf_nan=False,
        description="Temperature of --estimator relaxed or relaxed-logit "
        "[default: the estimator's own, shown by `rsc-bench names estimator`].",
    )


class ProtocolOptions(Strict):
    """The protocol's own fields that the command line may override beside the members'."""

    eval_draws: int = Field(
        default=1, ge=1, le=1024, description="Draws deciding a stochastic model's prediction: correct only if right on every draw."
    )
    checks: bool = Field(default=False, description="Run the attack-based reliability checks (always on in `reliable`).")


# The fields an option on the command line overrides (every member's, then the protocol's), in help order.
OVERRIDABLE: dict = {
    **{name: field for name, field in AttackFields.model_fields.items() if name != "attack"},
    **ProtocolOptions.model_fields,
}
