"""Spiking neurons: spikingjelly's multi-step LIF neuron behind the activation slot of a backbone.

Backbones run their stateless layers on ``[T * B, ...]`` tensors; `SpikingActivation`
regroups them as ``[T, B, ...]`` for the LIF recurrence and flattens the spikes back. An ANN
twin fills the same slot with ``nn.ReLU``, so both share one architecture definition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import torch
from spikingjelly.activation_based import neuron
from torch import nn

from robustbench_snn.defences import NEURONS, neuron_type_of
from robustbench_snn.errors import UserError, unknown_name
from robustbench_snn.models.compiled_lif import CompiledLIF, LIFWithSlope, potentials
from robustbench_snn.models.gradients import (
    SURROGATES,
    GradientMode,
    assg_update,
    with_local_gradient,
)


@dataclass(frozen=True)
class NeuronConfig:
    """LIF parameters (spikingjelly's ``LIFNode`` with ``decay_input=True``), the training surrogate,
    and the neuron type (`robustbench_snn.defences.NEURONS`) with its own ``params``: HoSNN's
    threshold-adapting ``adaptive-threshold`` (``threshold_tau``), TGO's ``noisy`` (``noise_sigma``),
    FEEL-SNN's ``evolving-leak`` (``leak_init``), or a plug-in's. ``type`` None: the one type whose
    parameters ``params`` are (the plain ``lif`` without any)."""

    tau: float = 2.0
    v_threshold: float = 1.0
    v_reset: float | None = 0.0
    surrogate: str = "atan"
    # None: the surrogate's own default sharpness (atan's 2, the triangle's 1, ...), filled in at creation.
    surrogate_alpha: float | None = None
    detach_reset: bool = False
    type: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.surrogate not in SURROGATES:
            raise UserError(unknown_name("surrogate", self.surrogate, SURROGATES))
        if self.surrogate_alpha is None:
            object.__setattr__(self, "surrogate_alpha", SURROGATES[self.surrogate].default_alpha)
        elif self.surrogate_alpha <= 0:
            raise UserError(f"the surrogate's sharpness must be > 0, got {self.surrogate_alpha}")
        if self.tau <= 1.0:
            raise UserError(f"LIF tau must be > 1, got {self.tau}")
        kind = neuron_type_of(self.params, self.type)
        object.__setattr__(self, "type", kind)
        object.__setattr__(self, "params", NEURONS[kind].parameters_of(self.params))

    def layer_class(self) -> type["SpikingActivation"]:
        """The layer type of these neurons (the neuron type's declared layer)."""
        return NEURONS[self.type].layer_class()

    def as_dict(self) -> dict:
        """The parameters for a card: the LIF's, then the type's own beside them, and the type's
        name only where its parameters do not already say it (cards of the built-in types stay as they were)."""
        fields = {name: value for name, value in asdict(self).items() if name not in ("type", "params")}
        named = {} if neuron_type_of(self.params) == self.type else {"type": self.type}
        return {**fields, **named, **self.params}


class Fired(NamedTuple):
    """A forward's spikes and the shifted potentials ``h - threshold`` they fired on (noise
    included), each ``[T, B, ...]`` and without gradient, plus what the layer's
    ``through_recurrence`` needs of its own."""

    spikes: torch.Tensor
    shifted: torch.Tensor
    state: torch.Tensor | None


class SpikingActivation(nn.Module):
    """A layer of LIF neurons run over ``timesteps`` steps on a time-flattened batch.

    ``set_gradient`` picks the backward rule attacks differentiate with (see
    `robustbench_snn.models.gradients`); ``rate_mode`` turns the layer into the rate ANN's
    ReLU of the time-averaged input, used for the ``act`` gradient; ``compiled`` runs the
    recurrence through the compiled kernel (`robustbench_snn.models.compiled_lif`) instead of
    spikingjelly's, with the same spikes. ``stochastic``: whether its forwards on one input may
    differ (a neuron type with noise of its own says so and has ``seed``).
    """

    stochastic = False

    @property
    def nir_refusal(self) -> str | None:
        """Why NIR cannot carry this layer (None: it is NIR's LIF). A neuron type's layer says so by
        itself; one that does not is refused, so no other dynamics is ever exported as the LIF."""
        if type(self) is SpikingActivation:
            return None
        return f"its neuron type does not say how NIR carries {type(self).__name__}"

    def __init__(self, timesteps: int, config: NeuronConfig) -> None:
        super().__init__()
        self.timesteps = timesteps
        self.config = config
        self.gradient = GradientMode()
        self.rate_mode = False
        self.lif = neuron.LIFNode(
            tau=config.tau,
            decay_input=True,
            v_threshold=config.v_threshold,
            v_reset=config.v_reset,
            surrogate_function=SURROGATES[config.surrogate].build(config.surrogate_alpha),
            detach_reset=config.detach_reset,
            step_mode="m",
        )
        self.training_surrogate = self.lif.surrogate_function
        self.surrogate = (config.surrogate, config.surrogate_alpha)
        self.compiled = False
        # ASSG's running moments of |h - threshold| per step, neuron and image, kept across an
        # attack's iterations; `update_sharpness` is off for the EOT draws after the first.
        self.sharpness_moments: tuple[torch.Tensor, torch.Tensor] | None = None
        self.update_sharpness = True

    def set_gradient(self, gradient: GradientMode) -> None:
        self.gradient = gradient
        self.sharpness_moments = None
        if gradient.rule.through_surrogate and gradient.surrogate is not None:
            self.lif.surrogate_function = SURROGATES[gradient.surrogate].build(gradient.alpha)
            self.surrogate = (gradient.surrogate, self.lif.surrogate_function.alpha)
        else:
            self.lif.surrogate_function = self.training_surrogate
            self.surrogate = (self.config.surrogate, self.config.surrogate_alpha)

    def surrogate_spikes(self, sequence: torch.Tensor) -> torch.Tensor:
        """The layer's spikes, differentiable by BPTT through the current surrogate."""
        if not self.compiled:
            return self.lif(sequence)
        config = self.config
        return CompiledLIF.apply(
            sequence, self.timesteps, config.tau, config.v_threshold, config.v_reset, *self.surrogate, config.detach_reset
        )

    def constant_input(self, current: torch.Tensor) -> torch.Tensor:
        """The spikes ``[T * B, ...]`` for a current ``[B, ...]`` that is the same at every step.

        The compiled kernel takes it once; other paths see it repeated over T.
        """
        if self.compiled and not self.rate_mode and (self.gradient.rule.through_surrogate or not torch.is_grad_enabled()):
            return self.surrogate_spikes(current.unsqueeze(0)).flatten(0, 1)
        return self(current.unsqueeze(0).expand(self.timesteps, *current.shape).flatten(0, 1))

    def forward(self, currents: torch.Tensor) -> torch.Tensor:
        sequence = currents.reshape(self.timesteps, -1, *currents.shape[1:])
        if self.rate_mode:
            output = torch.relu(sequence.mean(0, keepdim=True)).expand_as(sequence)
        elif not torch.is_grad_enabled():
            output = self.surrogate_spikes(sequence)
        else:  # the same spikes, differentiated as the attacker's gradient mode says
            output = self.gradient.rule.differentiate(self, sequence, self.gradient.parameter)
        return output.reshape(currents.shape)

    def rate_threshold(self, sequence: torch.Tensor) -> float | torch.Tensor:
        """The threshold of RGA's rate model (a neuron type whose threshold moves gives its own)."""
        return self.config.v_threshold

    def fired(self, sequence: torch.Tensor) -> Fired:
        """The spikes of ``sequence [T, B, ...]`` and the potentials they fired on, without gradient."""
        config = self.config
        with torch.no_grad():
            before_fire = potentials(sequence, self.timesteps, config.tau, config.v_threshold, config.v_reset, self.compiled)
            spikes = (before_fire >= config.v_threshold).to(sequence.dtype)
            return Fired(spikes, before_fire - config.v_threshold, before_fire)

    def through_recurrence(self, sequence: torch.Tensor, fired: Fired, slope: torch.Tensor) -> torch.Tensor:
        """``fired``'s spikes, differentiated by BPTT through the recurrence with ``slope`` as each
        spike's derivative with respect to its shifted potential (PDSG, ASSG)."""
        config = self.config
        return LIFWithSlope.apply(
            sequence, fired.state, slope, config.tau, config.v_threshold, config.v_reset, config.detach_reset, self.compiled
        )

    def sharpness_moments_for(self, shifted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ASSG's moments for this forward's ``shifted [T, k * B, ...]``.

        The moments are per image of the first draw's batch B; a forward of k draws of that batch
        (EOT) reads them repeated k times. A batch of another size (an attack that dropped its
        fooled samples) starts the moments afresh.
        """
        moments = self.sharpness_moments
        if moments is not None and (shifted.shape[1] % moments[0].shape[1] or shifted.shape[2:] != moments[0].shape[2:]):
            moments = None
        if self.update_sharpness and (moments is None or moments[0].shape[1] == shifted.shape[1]):
            moments = self.sharpness_moments = assg_update(moments, shifted)
        elif moments is None:
            moments = assg_update(None, shifted)
        draws = shifted.shape[1] // moments[0].shape[1]
        return tuple(moment.repeat(1, draws, *([1] * (shifted.dim() - 2))) for moment in moments)


class EagerActivation(SpikingActivation):
    """A LIF layer variant that runs its own recurrence, eagerly: the charge and reset are the zoo's
    LIF (spikingjelly's with ``decay_input``); a subclass charges otherwise (`_charge`), moves the
    threshold per step (`_next_threshold`) or adds noise to the potential at the firing decision
    (`_firing_noise`).

    Every gradient mode applies at what the neuron fires on, ``h - threshold`` (plus its noise):
    BPTT through any surrogate, and PDSG and ASSG through the whole recurrence; HART at each step's
    ``h - threshold``; RGA's rate model at the threshold averaged over the steps; BPTR and the rate
    ANN (act) as for LIF. The compiled kernel implements the fixed-threshold, noise-free LIF only,
    so these layers never use it.

    ``potential_gaps``, while a list, collects each forward's ``h - threshold`` under BPTT, with its
    gradient (for a training loss on the potentials, as TGO's).
    """

    potential_gaps: list[torch.Tensor] | None = None

    @property
    def compiled(self) -> bool:
        """Never: `compile_lif` leaves this layer eager."""
        return False

    @compiled.setter
    def compiled(self, enabled: bool) -> None:
        pass

    def _charge(self, potential: torch.Tensor, current: torch.Tensor, step: int) -> torch.Tensor:
        """The potential after ``step``'s input: the LIF's ``u + (x - (u - reset)) / tau``."""
        reset_to = 0.0 if self.config.v_reset is None else self.config.v_reset
        return potential + (current - (potential - reset_to)) / self.config.tau

    def _next_threshold(self, threshold: torch.Tensor, charged: torch.Tensor, step: int) -> torch.Tensor:
        """The threshold at ``step`` after the charge (fixed unless a subclass moves it)."""
        return threshold

    def _firing_noise(self, step: int) -> torch.Tensor | float:
        """The noise on the potential at ``step``'s firing decision (none unless a subclass adds it)."""
        return 0.0

    def constant_input(self, current: torch.Tensor) -> torch.Tensor:
        return self(current.unsqueeze(0).expand(self.timesteps, *current.shape).flatten(0, 1))

    def _run(self, sequence: torch.Tensor, fire: Callable[[int, torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The recurrence over ``sequence [T, B, ...]``, firing by ``fire(step, shifted)`` with
        ``shifted = h - threshold + noise``: the spikes, the shifted potentials, the thresholds and
        the noise-free gaps ``h - threshold``, each ``[T, B, ...]``."""
        config = self.config
        reset_to = 0.0 if config.v_reset is None else config.v_reset
        potential = torch.full_like(sequence[0], reset_to)
        threshold = torch.full_like(sequence[0], config.v_threshold)
        spikes, shifts, thresholds, gaps = [], [], [], []
        for step in range(self.timesteps):
            charged = self._charge(potential, sequence[step], step)
            threshold = self._next_threshold(threshold, charged, step)
            gap = charged - threshold
            shifted = gap + self._firing_noise(step)
            spike = fire(step, shifted)
            reset = spike.detach() if config.detach_reset else spike
            if config.v_reset is None:
                potential = charged - reset * threshold
            else:
                potential = charged * (1 - reset) + config.v_reset * reset
            spikes.append(spike)
            shifts.append(shifted)
            thresholds.append(threshold)
            gaps.append(gap)
        return torch.stack(spikes), torch.stack(shifts), torch.stack(thresholds), torch.stack(gaps)

    def surrogate_spikes(self, sequence: torch.Tensor) -> torch.Tensor:
        surrogate = self.lif.surrogate_function
        spikes, _, _, gaps = self._run(sequence, lambda step, shifted: surrogate(shifted))
        if self.potential_gaps is not None:
            self.potential_gaps.append(gaps)
        return spikes

    def _fired(self, sequence: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The spikes, shifted potentials, thresholds and gaps of the step function, without gradient."""
        with torch.no_grad():
            return self._run(sequence, lambda step, shifted: (shifted >= 0).to(shifted.dtype))

    def rate_threshold(self, sequence: torch.Tensor) -> torch.Tensor:
        """Each neuron's threshold averaged over the steps: the fixed threshold of RGA's rate model."""
        return self._fired(sequence)[2].mean(0, keepdim=True)

    def fired(self, sequence: torch.Tensor) -> Fired:
        spikes, shifted, _, _ = self._fired(sequence)
        return Fired(spikes, shifted, None)

    def through_recurrence(self, sequence: torch.Tensor, fired: Fired, slope: torch.Tensor) -> torch.Tensor:
        """By BPTT through the whole recurrence, threshold and noise included."""
        return self._run(sequence, lambda step, shifted_now: with_local_gradient(fired.spikes[step], shifted_now, slope[step]))[0]


def uses_adaptive_sharpness(model: nn.Module) -> bool:
    """Whether any spiking layer of ``model`` differentiates with ASSG (which keeps state across iterations)."""
    return any(isinstance(layer, SpikingActivation) and layer.gradient.rule.keeps_state for layer in model.modules())


@contextmanager
def holding_sharpness(model: nn.Module, hold: bool = True) -> Iterator[None]:
    """While ``hold``, ASSG's moments in ``model`` are read but not moved (EOT draws after the first)."""
    layers = [layer for layer in model.modules() if isinstance(layer, SpikingActivation)] if hold else []
    for layer in layers:
        layer.update_sharpness = False
    try:
        yield
    finally:
        for layer in layers:
            layer.update_sharpness = True


def with_rate_ann_gradient(run: Callable[[], torch.Tensor], layers: Sequence[SpikingActivation]) -> torch.Tensor:
    """The output of ``run()`` (the SNN's forward), carrying the gradient of the rate ANN with the
    same weights: ``run()`` again with every spiking layer as ReLU of its time-averaged input
    (the ``act`` gradient mode). ``run`` must see the same input both times."""
    with torch.no_grad():
        spiking = run()
    for layer in layers:
        layer.rate_mode = True
    try:
        rate = run()
    finally:
        for layer in layers:
            layer.rate_mode = False
    return spiking + (rate - rate.detach())


class SpikingModel:
    """What the runner asks of a model with spiking layers (mixed into `Classifier` and `UserModel`):
    ``spiking_layers``, ``set_gradient`` and from them ``using_gradient`` and ``compile_lif``."""

    spiking_layers: list[SpikingActivation]
    gradient: GradientMode

    def set_gradient(self, gradient: GradientMode) -> None:
        """Choose how attacks differentiate through spiking layers; the forward values never change."""
        self.gradient = gradient
        for position, layer in enumerate(self.spiking_layers):
            layer.set_gradient(gradient.for_layer(position, len(self.spiking_layers)))

    @contextmanager
    def using_gradient(self, gradient: GradientMode) -> Iterator["SpikingModel"]:
        previous = self.gradient
        self.set_gradient(gradient)
        try:
            yield self
        finally:
            self.set_gradient(previous)

    def compile_lif(self, enabled: bool = True) -> "SpikingModel":
        """Run every LIF layer through the compiled kernel (same spikes, faster; compiles on first use)."""
        for layer in self.spiking_layers:
            layer.compiled = enabled
        return self
