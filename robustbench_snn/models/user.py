"""A user's own model, given what the attack runner needs: its spiking layers, its randomness, a seed.

The runner asks a model for (`robustbench_snn.attacks.runner`):
- ``spiking_layers``: layers whose backward an SNN gradient mode replaces (`SpikingActivation`),
  and ``using_gradient(mode)`` to set it; absent or empty for an ANN;
- ``stochastic`` and ``seed(seed)`` (or ``encoder.seed(seed)``): whether forwards on the same input differ (then
  attacks average gradients over draws, EOT) and how to make its draws repeatable;
- optionally ``compile_lif()``, ``expectation_relative()`` and ``encoder.adaptive_attacks``.

`Classifier` (the registry's models) has all of these. `UserModel` gives them to any module:
`wrap_snn` replaces each multi-step spikingjelly LIF neuron of a network by a `SpikingActivation`
with the same parameters and surrogate (same spikes, every gradient mode), and `as_attackable`
(called by `benchmark`) wraps any module that has spikingjelly neurons or randomness. Randomness
is detected, not assumed: a module whose two forwards on one input differ is stochastic. Its
draws come from torch's global generator, which `UserModel` saves and restores around each forward
from a stream of its own, so a seed repeats a run and the caller's generator is left untouched.

Every other spikingjelly neuron keeps its own dynamics (`OwnNeuron`): single-step ones (each
call one time step) and, in multi-step mode, ``IFNode``, ``ParametricLIFNode``, ``LIFNode`` with
``decay_input=False`` and any other ``BaseNode``, whatever its reset or surrogate. Attacks reach
them by BPTT through their own surrogate or another of the attacker's choice; the modes that
replace the neuron's arithmetic (bptr, rga, act, hart, pdsg, assg) model the decay-input LIF and
cannot run on them: the runner lists those members as skipped, with the reason.

Networks of snnTorch, Norse or sinabs neurons (`models.libraries`) are wrapped as they are: their
state is reset before every forward, their spikes counted, and attacks differentiate them by BPTT
through the library's own surrogate (``keeps_own_surrogate``; members that differ only in the
surrogate are one attack on them, and the other modes are skipped with the reason).

Outputs: logits ``[B, classes]``, per-step outputs ``[T, B, classes]`` (averaged over the steps),
or a tuple whose first element is either (snnTorch's ``(spk_rec, mem_rec)``: the spike record's
rate); `ReadOut` reads them otherwise (the sum, the last step, the maximum; another element). A
network that none of this recognises but that returns ``[T, B, classes]`` is wrapped too, with a
warning that it is attacked as a network over time whose neurons the benchmark cannot see.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from spikingjelly.activation_based import functional, neuron
from torch import nn

from robustbench_snn.errors import UserError, unknown_name
from robustbench_snn.models.gradients import GRADIENT_MODES, SURROGATES, GradientMode
from robustbench_snn.models.interface import can_reseed
from robustbench_snn.models.libraries import library_neurons, reset_library_neurons
from robustbench_snn.models.neurons import NeuronConfig, SpikingActivation, SpikingModel, with_rate_ann_gradient

logger = logging.getLogger(__name__)


def own_neuron_modes() -> tuple[str, ...]:
    """The gradient modes a network of neurons kept as they are supports: BPTT through their own recurrence."""
    return tuple(name for name, rule in GRADIENT_MODES.items() if rule.through_surrogate)


class MultiStepNeuron(SpikingActivation):
    """A user's multi-step spikingjelly ``LIFNode`` (input ``[T, B, ...]``) as a `SpikingActivation`."""

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        self.timesteps = sequence.shape[0]
        return super().forward(sequence.flatten(0, 1)).view_as(sequence)


class OwnNeuron(nn.Module):
    """A user's spikingjelly neuron kept as it is (single-step, or a multi-step neuron other than the
    decay-input LIF); the attacker may swap its surrogate."""

    def __init__(self, node: neuron.BaseNode) -> None:
        super().__init__()
        self.node = node
        self.training_surrogate = node.surrogate_function

    def set_gradient(self, gradient: GradientMode) -> None:
        if not gradient.rule.through_surrogate:
            raise UserError(
                f"gradient mode {gradient.mode!r} models the decay-input LIF over the whole spike train; "
                f"{type(self.node).__name__} in {self.node.step_mode!r} step mode supports bptt"
            )
        if gradient.surrogate is None:
            self.node.surrogate_function = self.training_surrogate
        else:
            self.node.surrogate_function = SURROGATES[gradient.surrogate].build(gradient.alpha)

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        return self.node(current)


def _surrogate_name(node: neuron.BaseNode) -> tuple[str, float]:
    function = node.surrogate_function
    for name, entry in SURROGATES.items():
        if type(function) is entry.function:
            return name, float(function.alpha)
    raise UserError(
        f"{type(node).__name__} uses the surrogate {type(function).__name__}, which the gradient modes do not know; "
        f"use one of {', '.join(f'surrogate.{entry.function.__name__}' for entry in SURROGATES.values())}"
    )


def _known_surrogate(node: neuron.BaseNode) -> bool:
    return any(type(node.surrogate_function) is entry.function for entry in SURROGATES.values())


def _converted(node: neuron.BaseNode) -> nn.Module:
    """The runner's layer for one of the user's neurons: the decay-input LIF in multi-step mode as
    our `SpikingActivation` (the same spikes, every gradient mode), any other kept as it is."""
    if node.step_mode == "s" or type(node) is not neuron.LIFNode or not node.decay_input or not _known_surrogate(node):
        logger.info("%s (%s step mode) keeps its own dynamics: attacked by bptt", type(node).__name__, node.step_mode)
        return OwnNeuron(node)
    surrogate_name, alpha = _surrogate_name(node)
    config = NeuronConfig(
        tau=float(node.tau),
        v_threshold=float(node.v_threshold),
        v_reset=None if node.v_reset is None else float(node.v_reset),
        surrogate=surrogate_name,
        surrogate_alpha=alpha,
        detach_reset=bool(node.detach_reset),
    )
    return MultiStepNeuron(1, config)


def _replace_neurons(module: nn.Module) -> int:
    count = 0
    for name, child in module.named_children():
        if isinstance(child, neuron.BaseNode):
            setattr(module, name, _converted(child))
            count += 1
        else:
            count += _replace_neurons(child)
    return count


def has_spikingjelly_neurons(module: nn.Module) -> bool:
    return any(isinstance(child, neuron.BaseNode) for child in module.modules())


class RandomStream:
    """A stream of torch's global random numbers that belongs to one model: ``seed`` restarts it,
    and each forward continues it without touching the caller's generator."""

    stochastic = True
    adaptive_attacks: tuple[dict, ...] = ()

    def __init__(self, seed: int = 0) -> None:
        self.seed(seed)

    def seed(self, seed: int) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.cpu_state = torch.get_rng_state()
        self.cuda_seed = seed
        self.cuda_states: list[torch.Tensor] | None = None

    @contextmanager
    def drawing(self) -> Iterator[None]:
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu_state)
            if devices:
                if self.cuda_states is None:
                    torch.cuda.manual_seed_all(self.cuda_seed)
                else:
                    torch.cuda.set_rng_state_all(self.cuda_states)
            try:
                yield
            finally:
                self.cpu_state = torch.get_rng_state()
                if devices:
                    self.cuda_states = torch.cuda.get_rng_state_all()


class UserModel(SpikingModel, nn.Module):
    """A user's network with the interface the runner needs (see the module docstring).

    Its output may be logits ``[B, classes]`` or per-step logits ``[T, B, classes]`` (averaged).
    Neuron state is reset before every forward.
    """

    def __init__(self, network: nn.Module, stochastic: bool = False, seed: int = 0) -> None:
        super().__init__()
        self.network = network
        self.encoder = RandomStream(seed) if stochastic else None
        self.gradient = GradientMode()
        self.display_name = type(network).__name__

    @property
    def stochastic(self) -> bool:
        return self.encoder is not None

    def seed(self, seed: int) -> None:
        """Restart the network's random stream at ``seed`` (a deterministic network has none)."""
        if self.encoder is not None:
            self.encoder.seed(seed)

    @property
    def spiking_layers(self) -> list[SpikingActivation]:
        return [module for module in self.network.modules() if isinstance(module, SpikingActivation)]

    @property
    def own_neurons(self) -> list[OwnNeuron]:
        """The spikingjelly neurons kept with their own dynamics (`OwnNeuron`)."""
        return [module for module in self.network.modules() if isinstance(module, OwnNeuron)]

    @property
    def library_neurons(self) -> list[nn.Module]:
        """The neurons of other SNN libraries (snnTorch, Norse, sinabs) in the network."""
        return [module for module, _ in library_neurons(self.network)]

    @property
    def keeps_own_surrogate(self) -> bool:
        """Whether the network's neurons differentiate through their own surrogate, whatever the attacker asks."""
        return bool(self.library_neurons)

    @property
    def supported_gradients(self) -> tuple[str, ...] | None:
        """The SNN gradient modes this model supports (None: all of them)."""
        return own_neuron_modes() if self.own_neurons or self.library_neurons else None

    def set_gradient(self, gradient: GradientMode) -> None:
        if self.library_neurons and (not gradient.rule.through_surrogate or gradient.surrogate is not None):
            raise UserError(
                f"{gradient.label()}: this network's neurons (snnTorch, Norse, sinabs) support bptt through their own surrogate"
            )
        self.gradient = gradient
        # In the network's module order, both kinds together: the last one registered takes a last layer's sharpness.
        layers = [module for module in self.network.modules() if isinstance(module, (SpikingActivation, OwnNeuron))]
        for position, layer in enumerate(layers):
            layer.set_gradient(gradient.for_layer(position, len(layers)))

    def _run(self, images: torch.Tensor) -> torch.Tensor:
        functional.reset_net(self.network)
        reset_library_neurons(self.network)
        return per_step_mean(self.network(images))

    def _forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.gradient.rule.rate_ann or not torch.is_grad_enabled() or not self.spiking_layers:
            return self._run(images)
        state = torch.get_rng_state()

        def same_draws() -> torch.Tensor:  # the rate pass sees the random numbers the spiking pass saw
            torch.set_rng_state(state)
            return self._run(images)

        return with_rate_ann_gradient(same_draws, self.spiking_layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.encoder is None:
            output = self._forward(images)
        else:
            with self.encoder.drawing():
                output = self._forward(images)
        if torch.is_grad_enabled() and images.requires_grad:
            # A network whose graph never reaches its input (an encoder that samples without a
            # straight-through gradient) has an input gradient of exactly zero; attach the input so
            # that attacks see that zero (and flag it) instead of an autograd error.
            output = output + 0 * images.sum()
        return output


def wrap_snn(network: nn.Module, *, stochastic: bool | None = None, seed: int = 0, sample: torch.Tensor | None = None) -> UserModel:
    """A copy of a spikingjelly network that every SNN gradient mode, EOT and the decision rule apply to.

    Multi-step ``LIFNode``s (``decay_input=True``, any surrogate of the gradient table) become
    `SpikingActivation`s with the same parameters: the same spikes, and bptt with any surrogate,
    bptr, rga, act, hart, pdsg and assg. Every other neuron keeps its own dynamics (bptt only).
    ``stochastic``: whether the network draws random numbers (its own Poisson encoder, say);
    None detects it from two forwards on ``sample``. ``seed`` starts its random stream. The
    network may encode its input itself (images in, logits out) and may return per-step logits.
    """
    copied = copy.deepcopy(network)
    if _replace_neurons(copied) == 0:
        raise UserError("the network has no spikingjelly neurons; evaluate it as it is (an ANN)")
    model = UserModel(copied, seed=seed)
    if stochastic is None:
        if sample is None:
            raise UserError("pass stochastic=True/False, or a sample input to detect randomness from")
        stochastic = draws_differ(model, sample)
    if stochastic:
        model.encoder = RandomStream(seed)
    return model.eval()


# How a network's outputs over time become logits: what each reduction of ``[T, B, classes]`` is for.
READOUTS = {
    "mean": "the average over time (spike rates, mean membrane potential)",
    "sum": "the sum over time (spike counts)",
    "last": "the last time step (the final membrane potential)",
    "max": "the maximum over time (Norse's readout voltage)",
}


class ReadOut(nn.Module):
    """A network whose outputs over time are read the way the user means them: ``element`` picks
    one output of a tuple (snnTorch's ``(spk_rec, mem_rec)``: 0 the spikes, 1 the membranes) and
    ``over_time`` (`READOUTS`) reduces its ``[T, B, classes]``. Without it the benchmark averages
    the first element. The readout is part of the model (it is printed, so part of a result's
    identity): two readouts of one network are two models."""

    def __init__(self, network: nn.Module, over_time: str = "mean", element: int = 0) -> None:
        super().__init__()
        if over_time not in READOUTS:
            raise UserError(unknown_name("readout", over_time, READOUTS))
        if type(element) is not int or element < 0:
            raise UserError(f"element must be a non-negative integer (which output of a tuple), not {element!r}")
        self.network, self.over_time, self.element = network, over_time, element

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        output = self.network(images)
        if isinstance(output, (tuple, list)):
            if self.element >= len(output):
                raise UserError(f"ReadOut element {self.element}: the network returns {len(output)} outputs")
            output = output[self.element]
        elif self.element:
            raise UserError(f"ReadOut element {self.element}: the network returns one tensor, not a tuple")
        if output.dim() != 3:
            raise UserError(f"ReadOut reduces outputs over time [T, B, classes]; the network returns {list(output.shape)}")
        if self.over_time == "mean":
            return output.mean(0)
        if self.over_time == "sum":
            return output.sum(0)
        if self.over_time == "last":
            return output[-1]
        return output.max(0).values

    def extra_repr(self) -> str:
        return f"over_time={self.over_time}, element={self.element}"


def per_step_mean(output: torch.Tensor | tuple) -> torch.Tensor:
    """Logits from a network's output: a tuple's first element, and ``[T, B, classes]`` averaged over T."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    return output.mean(0) if output.dim() == 3 else output


def draws_differ(model: nn.Module, sample: torch.Tensor) -> bool:
    """Whether two forwards of ``model`` on ``sample`` differ (the model draws random numbers), on a
    stream of their own: the caller's global generator is left as it was."""
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        first = model(sample)
        second = model(sample)
    return not torch.equal(first, second)


def as_attackable(model: nn.Module, sample: torch.Tensor, seed: int = 0) -> nn.Module:
    """``model`` as the runner needs it: registry models and wrapped ones as they are; a module with
    spikingjelly neurons wrapped by `wrap_snn`; any other module whose forwards differ given a
    random stream (`UserModel`); a deterministic ANN as it is."""
    if getattr(model, "stochastic", False) and not can_reseed(model):
        raise UserError(
            f"{type(model).__name__} says it is stochastic but has no seed(seed) method: give it one that restarts "
            "its random streams, so its draws can be repeated and averaged (EOT)"
        )
    if hasattr(model, "stochastic") or hasattr(model, "certify"):
        return model
    if has_spikingjelly_neurons(model):
        return wrap_snn(model, sample=sample, seed=seed)
    if library_neurons(model):
        wrapped = UserModel(model, seed=seed).eval()
        if draws_differ(wrapped, sample):
            wrapped.encoder = RandomStream(seed)
        return wrapped
    if draws_differ(model, sample):
        return UserModel(model, stochastic=True, seed=seed).eval()
    with torch.no_grad():
        output = model(sample)
    if isinstance(output, (tuple, list)) or output.dim() == 3 or isinstance(model, ReadOut):
        logger.warning(
            "%s returns outputs over time but has no neurons the benchmark recognises (spikingjelly, snnTorch, Norse, "
            "sinabs): it is attacked as a network over time, by plain backprop through whatever it computes, and its "
            "energy is counted as an ANN's",
            type(model).__name__,
        )
        return UserModel(model).eval()
    return model
