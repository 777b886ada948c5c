"""SNN gradient modes: how an attacker differentiates through spiking layers.

The forward pass never changes with the mode (logits are bit-identical); only the backward
rule of each spiking layer does:

- ``bptt``: backprop through the unrolled LIF recurrence with a surrogate derivative of the
  Heaviside step (atan, sigmoid, triangle, rectangle, exponential), at a chosen sharpness.
- ``bptr``: backprop through rate (Ding et al., NeurIPS 2022): the layer is a rate unit,
  ``dL/dx_t = dL/ds_t * 1[r > 0]`` with ``r`` the neuron's firing rate, and no recursion
  through membrane or reset.
- ``rga``: rate gradient approximation (Bu et al., CVPR 2023): ``dL/dx_t = dL/ds_t * g``,
  with ``g`` the slope of a piecewise-linear model of the LIF rate as a function of the
  time-averaged input, set by the leak and the threshold (below).
- ``act``: gradients of the rate ANN with the same weights (each spiking nonlinearity replaced
  by ReLU of its time-averaged input), attached to the SNN's logits.
- ``hart`` (Hao et al., ICLR 2024): no recursion through the membrane (leak and reset detached);
  each step's local gradient ``dL/ds_t * tri(h_t - threshold) / tau``, with the triangle surrogate
  ``tri(x) = max(0, w - |x|) / w^2`` of width ``w`` (``alpha``, default 1), is averaged over the T
  steps and given to every step.
- ``pdsg`` (CVPR 2025, potential-dependent surrogate): BPTT with a Gaussian surrogate whose
  standard deviation is that of the membrane potential, per channel (per layer for a linear
  layer), over the batch and the steps up to t.
- ``assg`` (Wang et al., arXiv 2512.22522, adaptive-sharpness surrogate): BPTT with an arctan
  surrogate whose sharpness is set per neuron, per step and per image from running moments of
  ``|h_t - threshold|`` kept across the attack's iterations: ``M <- 0.9 M + 0.1 |u|``,
  ``D <- 0.9 D + 0.1 ||u| - M|`` (from M = 1, D = 0), sharpness ``a / (M + 1.5 D + 1e-4)`` with
  ``a = 2 tan(pi A) / pi`` and ``A`` (``alpha``, default 0.425) the tolerated vanishing degree.
  The moments move once per attack iteration (on the first EOT draw, as the authors' code does).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated

import torch
from pydantic import AfterValidator
from spikingjelly.activation_based import surrogate

from robustbench_snn.attack_fields import DEFAULT_GRADIENT_MODE
from robustbench_snn.errors import UserError, unknown_name
from robustbench_snn.plugins import Registry


@dataclass(frozen=True)
class Surrogate:
    """A surrogate derivative of the Heaviside step: spikingjelly's module (used by its LIF layers),
    its closed-form backward ``f(grad, x, alpha) -> (grad * g(x), None)`` (used by the compiled
    kernel) and its default sharpness (spikingjelly's)."""

    function: type[surrogate.SurrogateFunctionBase]
    derivative: Callable
    default_alpha: float

    def build(self, alpha: float | None = None) -> surrogate.SurrogateFunctionBase:
        return self.function(alpha=self.default_alpha if alpha is None else alpha)


# The built-in surrogates, by the names the literature uses.
BUILT_IN_SURROGATES: dict[str, Surrogate] = {
    "atan": Surrogate(surrogate.ATan, surrogate.atan_backward, 2.0),
    "sigmoid": Surrogate(surrogate.Sigmoid, surrogate.sigmoid_backward, 4.0),
    # its derivative is the triangle max(0, a - a^2 |x|)
    "triangle": Surrogate(surrogate.PiecewiseQuadratic, surrogate.piecewise_quadratic_backward, 1.0),
    "rectangle": Surrogate(surrogate.Rect, surrogate.rect_backward, 1.0),
    "exponential": Surrogate(surrogate.PiecewiseExp, surrogate.piecewise_exp_backward, 1.0),
}


def register_surrogate(name: str, entry: Surrogate) -> Surrogate:
    """Make a surrogate available by ``name`` (``--surrogate``, presets, cards)."""
    return SURROGATES.register(name, entry)


def _register_built_ins() -> None:
    for name, entry in BUILT_IN_SURROGATES.items():
        register_surrogate(name, entry)


# Every surrogate by name: the built-in ones, then those of installed plug-in packages.
SURROGATES: Registry[Surrogate] = Registry("surrogate", "robustbench_snn.surrogates", _register_built_ins)


@dataclass(frozen=True, kw_only=True)
class GradientRule:
    """An SNN gradient mode, declared once: its name, what it is in a line, the default of its
    parameter (None: it takes none, or, ``through_surrogate``, the surrogate's own sharpness), and
    its backward: ``differentiate(layer, sequence, parameter)`` returns the layer's spikes for
    ``sequence [T, B, ...]`` carrying this mode's gradient, from what every spiking layer offers
    (`robustbench_snn.models.neurons.SpikingActivation`: ``surrogate_spikes``, ``fired``,
    ``through_recurrence``, ``rate_threshold``, ``sharpness_moments_for``), so a neuron type asks
    the mode and never names one. ``through_surrogate``: BPTT through a surrogate of the attacker's
    choice (what neurons kept as they are support); ``rate_ann``: the model attaches the rate
    ANN's gradient; ``keeps_state``: the mode keeps state across an attack's iterations."""

    name: str
    summary: str
    differentiate: Callable
    default_parameter: float | None = None
    # The open interval a given parameter must lie in, and what the parameter is (for the message).
    parameter_range: tuple[float, float] | None = None
    parameter_name: str = "parameter"
    through_surrogate: bool = False
    rate_ann: bool = False
    keeps_state: bool = False


def register_gradient_mode(rule: GradientRule) -> GradientRule:
    """Make a gradient mode available by ``rule.name`` (``--grad``, presets)."""
    return GRADIENT_MODES.register(rule.name, rule)


def _surrogate_spikes(layer, sequence: torch.Tensor, parameter: float | None) -> torch.Tensor:
    return layer.surrogate_spikes(sequence)


def _bptr(layer, sequence: torch.Tensor, parameter: float | None) -> torch.Tensor:
    with torch.no_grad():
        spikes = layer.surrogate_spikes(sequence)
    return with_local_gradient(spikes, sequence, bptr_slope(sequence, spikes))


def _rga(layer, sequence: torch.Tensor, parameter: float | None) -> torch.Tensor:
    with torch.no_grad():
        spikes = layer.surrogate_spikes(sequence)
    return with_local_gradient(spikes, sequence, rga_slope(sequence, layer.config.tau, layer.rate_threshold(sequence)))


def _hart(layer, sequence: torch.Tensor, width: float) -> torch.Tensor:
    fired = layer.fired(sequence)
    slope = triangle_slope(fired.shifted, width) / layer.config.tau
    return with_local_gradient(fired.spikes, time_averaged(sequence), slope)


def _pdsg(layer, sequence: torch.Tensor, parameter: float | None) -> torch.Tensor:
    fired = layer.fired(sequence)
    with torch.no_grad():
        slope = pdsg_slope(fired.shifted)
    return layer.through_recurrence(sequence, fired, slope)


def _assg(layer, sequence: torch.Tensor, vanishing_degree: float) -> torch.Tensor:
    fired = layer.fired(sequence)
    with torch.no_grad():
        slope = assg_slope(fired.shifted, layer.sharpness_moments_for(fired.shifted), vanishing_degree)
    return layer.through_recurrence(sequence, fired, slope)


BUILT_IN_GRADIENT_MODES = (
    GradientRule(
        name=DEFAULT_GRADIENT_MODE,
        summary="BPTT through the unrolled recurrence with a surrogate of the attacker's choice",
        differentiate=_surrogate_spikes,
        through_surrogate=True,
    ),
    GradientRule(name="bptr", summary="backprop through rate (Ding et al. 2022)", differentiate=_bptr),
    GradientRule(name="rga", summary="rate gradient approximation (Bu et al. 2023)", differentiate=_rga),
    GradientRule(name="act", summary="the rate ANN's gradient with the same weights", differentiate=_surrogate_spikes, rate_ann=True),
    GradientRule(
        name="hart", summary="HART's time-averaged triangle surrogate (Hao et al. 2024)", differentiate=_hart, default_parameter=1.0
    ),
    GradientRule(name="pdsg", summary="potential-dependent Gaussian surrogate (CVPR 2025)", differentiate=_pdsg),
    GradientRule(
        name="assg",
        summary="adaptive-sharpness arctan surrogate (Wang et al. 2025)",
        differentiate=_assg,
        default_parameter=0.425,
        parameter_range=(0.0, 0.5),
        parameter_name="vanishing degree A",
        keeps_state=True,
    ),
)


def _register_built_in_modes() -> None:
    for rule in BUILT_IN_GRADIENT_MODES:
        register_gradient_mode(rule)


# Every gradient mode by name: the built-in ones, in the order above, then those of installed plug-in packages.
GRADIENT_MODES: Registry[GradientRule] = Registry("gradient mode", "robustbench_snn.gradients", _register_built_in_modes)

ASSG_MOMENTUM = 0.9
ASSG_RELAX = 1.5

# RGA's rate model: a small slope below the firing knee keeps gradients alive where a neuron
# is silent, and the ramp above it reaches rate 1 at RGA_EXTENSION thresholds past the knee.
RGA_SILENT_SLOPE = 0.2
RGA_EXTENSION = 1.0


def _one_of(what: str, known) -> AfterValidator:
    def check(name: str) -> str:
        if name not in known:
            raise ValueError(unknown_name(what, name, known))
        return name

    return AfterValidator(check)


# Names as validated schema fields (cards, presets): the tables above are the one list of each.
SurrogateName = Annotated[str, _one_of("surrogate", SURROGATES)]
GradientModeName = Annotated[str, _one_of("gradient mode", GRADIENT_MODES)]


@dataclass(frozen=True)
class GradientMode:
    """An attacker's choice of SNN gradient; ``surrogate`` and ``alpha`` apply to ``bptt``."""

    mode: str = DEFAULT_GRADIENT_MODE
    surrogate: str | None = None
    alpha: float | None = None
    # The last spiking layer's sharpness where it differs from ``alpha`` (issue 40's fourth red team:
    # sharp early layers and a smooth last one, 8, 8 and 2, brought margins PGD could not).
    last_alpha: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in GRADIENT_MODES:
            raise UserError(unknown_name("gradient mode", self.mode, GRADIENT_MODES))
        if self.surrogate is not None and self.surrogate not in SURROGATES:
            raise UserError(unknown_name("surrogate", self.surrogate, SURROGATES))
        if self.alpha is not None and self.alpha <= 0:
            raise UserError(f"surrogate sharpness must be > 0, got {self.alpha}")
        if self.last_alpha is not None and (self.last_alpha <= 0 or self.surrogate is None or not self.rule.through_surrogate):
            raise UserError(f"a last layer's sharpness ({self.last_alpha}) needs bptt through a named surrogate, and must be > 0")
        bounds = self.rule.parameter_range
        if self.alpha is not None and bounds is not None and not bounds[0] < self.alpha < bounds[1]:
            raise UserError(f"{self.mode}'s {self.rule.parameter_name} must be in ({bounds[0]:g}, {bounds[1]:g}), got {self.alpha}")

    @property
    def rule(self) -> GradientRule:
        """The registered mode this choice names."""
        return GRADIENT_MODES[self.mode]

    @property
    def parameter(self) -> float | None:
        """The rule's parameter: the surrogate's sharpness for bptt, the width for hart, A for assg."""
        default = self.rule.default_parameter
        return self.alpha if self.alpha is not None or default is None else default

    def for_layer(self, position: int, layers: int) -> "GradientMode":
        """The mode of spiking layer ``position`` of ``layers``: the last takes ``last_alpha`` where given."""
        if self.last_alpha is None or position != layers - 1:
            return self
        return replace(self, alpha=self.last_alpha, last_alpha=None)

    def label(self) -> str:
        if self.rule.default_parameter is not None:
            return f"{self.mode}@{self.parameter:g}"
        if not self.rule.through_surrogate or self.surrogate is None:
            return self.mode
        last = f",last@{self.last_alpha:g}" if self.last_alpha is not None else ""
        return f"bptt-{self.surrogate}" + (f"@{self.alpha:g}" if self.alpha is not None else "") + last


def bptr_slope(currents: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
    """``1[r > 0]`` per neuron, shared by all steps (inputs are ``[T, B, ...]``)."""
    return (spikes.mean(0, keepdim=True) > 0).to(currents.dtype)


def rga_slope(currents: torch.Tensor, tau: float, threshold: float) -> torch.Tensor:
    """RGA's slope of the LIF rate with respect to each step's input, shared by all steps.

    With spikingjelly's decay-input LIF, ``u_t = leak * u_{t-1} + x_t / tau`` and
    ``leak = 1 - 1/tau``. In units of the effective drive ``z = mean_t(x_t) / (tau * threshold)``
    the neuron is silent below ``1 - leak`` (slope RGA_SILENT_SLOPE there), then its rate rises
    linearly to 1 at ``z = 1 + RGA_EXTENSION``. The chain rule adds the factor ``1/(tau * threshold)``.
    """
    leak = 1.0 - 1.0 / tau
    drive = currents.mean(0, keepdim=True) / (tau * threshold)
    knee = 1.0 - leak
    ramp = (1.0 - RGA_SILENT_SLOPE * knee) / (1.0 + RGA_EXTENSION - knee)
    slope = torch.where(
        (drive >= knee) & (drive <= 1.0 + RGA_EXTENSION),
        torch.full_like(drive, ramp),
        torch.where((drive >= 0) & (drive < knee), torch.full_like(drive, RGA_SILENT_SLOPE), torch.zeros_like(drive)),
    )
    return slope / (tau * threshold)


def with_local_gradient(values: torch.Tensor, inputs: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    """``values`` in the forward pass; ``d values / d inputs = slope`` (elementwise) in the backward."""
    linear = inputs * slope.detach()
    return values.detach() + (linear - linear.detach())


def time_averaged(sequence: torch.Tensor) -> torch.Tensor:
    """``sequence [T, ...]`` in the forward pass; each step's gradient is the mean over steps (HART)."""
    mean = sequence.mean(0, keepdim=True).expand_as(sequence)
    return sequence.detach() + (mean - mean.detach())


def triangle_slope(shifted: torch.Tensor, width: float) -> torch.Tensor:
    """HART's triangle surrogate ``max(0, w - |x|) / w^2`` at ``x = h - threshold``."""
    return (width - shifted.abs()).clamp_min(0) / width**2


def pdsg_slope(shifted: torch.Tensor) -> torch.Tensor:
    """PDSG's Gaussian surrogate at ``shifted [T, B, C, ...]`` (or ``[T, B, F]``).

    Its standard deviation at step t is that of the membrane potential over the steps up to t,
    the batch and the spatial positions, per channel; per layer for a linear layer. A width of
    zero (a constant potential) is taken as 1.
    """
    per_channel = shifted.dim() > 3
    widths = []
    for step in range(shifted.shape[0]):
        seen = shifted[: step + 1]
        if per_channel:
            std = seen.transpose(0, 2).flatten(1).std(1).view(1, -1, *([1] * (shifted.dim() - 3)))
        else:
            std = seen.std().view(1, 1)
        widths.append(torch.where(std == 0, torch.ones_like(std), std))
    width = torch.stack(widths).expand_as(shifted)
    return torch.exp(-0.5 * (shifted / width) ** 2) / (math.sqrt(2 * math.pi) * width)


def assg_coefficient(vanishing_degree: float) -> float:
    """ASSG's ``a = 2 tan(pi A) / pi``."""
    return 2 * math.tan(math.pi * vanishing_degree) / math.pi


def assg_update(moments: tuple[torch.Tensor, torch.Tensor] | None, shifted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of ASSG's running moments ``(M, D)`` of ``|shifted|`` (from M = 1, D = 0)."""
    magnitude = shifted.abs()
    first, spread = moments if moments is not None else (torch.ones_like(magnitude), torch.zeros_like(magnitude))
    first = ASSG_MOMENTUM * first + (1 - ASSG_MOMENTUM) * magnitude
    spread = ASSG_MOMENTUM * spread + (1 - ASSG_MOMENTUM) * (magnitude - first).abs()
    return first, spread


def assg_slope(shifted: torch.Tensor, moments: tuple[torch.Tensor, torch.Tensor], vanishing_degree: float) -> torch.Tensor:
    """The arctan surrogate ``(s/2) / (1 + (pi/2 s x)^2)`` with ASSG's sharpness ``s`` per element."""
    first, spread = moments
    sharpness = assg_coefficient(vanishing_degree) / (first + ASSG_RELAX * spread + 1e-4)
    return sharpness / 2 / (1 + (math.pi / 2 * sharpness * shifted) ** 2)
