"""Energy: the spikes, synaptic operations and MACs of a model's forward pass, and their estimated energy.

Counted per image and per forward pass (all T steps), with forward hooks on one pass per draw:

- spiking layers: spikes, and the firing rate (spikes per neuron per step);
- synaptic layers (convolutions, linear layers): a layer fed with spikes does one accumulate per
  spike and synapse it drives, ``SynOps = sum_i s_i * fanout_i`` (with the borders of padding and
  stride); a layer fed with real values does one multiply-accumulate per weight use (MACs).
  Spikes stay spikes through pooling, flattening and dropout, so an average-pooled spike map
  drives the next layer at its rate (the firing rate x FLOPs convention of the SNN literature),
  and through the registry's input normalisation (a per-channel affine map, which folds into the
  first layer's weights and bias). When every step sees the same real-valued input (direct
  coding, RSC-I), the layer is counted once, as an implementation computes it once (the shared
  stem does);
- energy: ``MACs * 4.6 pJ + SynOps * 0.9 pJ``, Horowitz's 45 nm figures for 32-bit float
  (ISSCC 2014), as spikingjelly's op_counter has them. Membrane updates, normalisation, pooling
  and memory traffic are not counted: an estimate of the synaptic arithmetic, not a measurement
  on hardware.

We take the constants from spikingjelly's ``op_counter`` but count with our own hooks: its
counters classify each matmul or convolution by whether its input tensor is binary, so
average-pooled spikes (every zoo architecture pools its spikes) and the Poisson models'
normalised input spikes would count as dense MACs, a frame repeated over T would count T times,
and they total a batch where a record needs each image.

Leading dimensions are read time-major (``[T * B, ...]`` or ``[T, B, ...]``), as spikingjelly's
multi-step layers and our backbones lay them out; a single-step network is counted per call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from spikingjelly.activation_based import layer as sj_layer
from spikingjelly.activation_based.op_counter import SimpleEnergyCostConfig, is_binary_tensor
from torch import nn

from robustbench_snn.devices import resolve_device
from robustbench_snn.models.classifier import Classifier
from robustbench_snn.models.interface import is_stochastic, reseed
from robustbench_snn.models.libraries import library_of
from robustbench_snn.models.neurons import SpikingActivation
from robustbench_snn.models.user import OwnNeuron, as_attackable
from robustbench_snn.seeds import batch_seed

_COSTS = SimpleEnergyCostConfig.fp32()
CONSTANTS = {
    "mac_pj": _COSTS.e_mac_pj,
    "ac_pj": _COSTS.e_ac_pj,
    "source": "Horowitz, ISSCC 2014: 45 nm CMOS, 32-bit float (the constants of spikingjelly's op_counter)",
    "counts": "synaptic operations only: MACs of layers fed with real values, one accumulate per spike and synapse "
    "(SynOps) of layers fed with spikes; membrane updates, normalisation, pooling and memory traffic are not counted",
    "note": "an estimate from operation counts, not a measurement on hardware",
}

_SYNAPTIC = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
# Layers through which spikes stay spikes: each input element reaches the next synaptic layer
# unchanged, averaged with others or dropped.
_PASS_THROUGH = (
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.Flatten,
    nn.modules.dropout._DropoutNd,
    nn.Identity,
    sj_layer.Dropout,
)
_NEURONS = (SpikingActivation, OwnNeuron)


def energy_pj(synops: float, macs: float) -> float:
    """The estimated energy of ``synops`` accumulates and ``macs`` multiply-accumulates, in pJ."""
    return synops * CONSTANTS["ac_pj"] + macs * CONSTANTS["mac_pj"]


@dataclass
class SpikingTally:
    """A spiking layer over one forward: neurons per step, steps run, spikes per image."""

    neurons: int
    steps: int
    spikes: torch.Tensor


@dataclass
class SynapticTally:
    """A synaptic layer over one forward: its operation, what drove it, SynOps and MACs per image."""

    operation: str
    driven_by: str
    synops: torch.Tensor
    macs: torch.Tensor


def _time_major(tensor: torch.Tensor, images: int, trailing: int) -> torch.Tensor:
    """``tensor`` as ``[steps, images, *its last trailing dims]``, its leading dimensions (``[T * B]``,
    ``[T, B]`` or ``[B]``) read time-major."""
    return tensor.reshape(-1, images, *tensor.shape[tensor.dim() - trailing :])


def _per_image(rows: torch.Tensor) -> torch.Tensor:
    """Per image, the sum of ``rows [steps, images, ...]`` (each step summed in the tensor's own
    precision, exact for counts below 2^24, then the steps in float64)."""
    return rows.flatten(2).sum(2).double().sum(0)


def _fan_out(convolution: nn.Module, spikes: torch.Tensor) -> torch.Tensor:
    """Per row of ``spikes [rows, C, ...]``, the (spike, synapse) pairs of ``convolution``: each output
    position sums the weights over its window, so all-one weights count every pair once, borders
    included. Without groups every output channel reads every input channel: one channel of summed
    spikes, times the output channels, gives the same count at a fraction of the cost."""
    if convolution.groups == 1:
        ones = torch.ones(1, 1, *convolution.weight.shape[2:], dtype=spikes.dtype, device=spikes.device)
        fanned = convolution._conv_forward(spikes.sum(1, keepdim=True), ones, None)
        return fanned.flatten(1).double().sum(1) * convolution.out_channels
    return convolution._conv_forward(spikes, torch.ones_like(convolution.weight), None).flatten(1).double().sum(1)


def _repeated_frame(rows: torch.Tensor) -> torch.Tensor:
    """Per image: whether every step of ``rows [steps, images, ...]`` holds the same values."""
    return (rows == rows[:1]).flatten(2).all(2).all(0)


@dataclass
class _Pass:
    """One counted forward of ``images`` images: the tallies by layer name, in the order the layers
    first ran, and the tensors known to carry spikes (by id, held alive for the pass) with the
    spikes each stands for."""

    inputs: torch.Tensor
    spiking_network: bool
    tallies: dict[str, SpikingTally | SynapticTally] = field(default_factory=dict)
    events: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    def mark(self, tensor: torch.Tensor, spikes: torch.Tensor) -> None:
        self.events[id(tensor)] = (tensor, spikes)

    @property
    def images(self) -> int:
        return len(self.inputs)

    def spikes_in(self, tensor: torch.Tensor) -> torch.Tensor | None:
        """The spikes ``tensor`` carries: tracked ones, or in an SNN its own values if they are 0 or 1
        (spikes of the network's own encoder), unless they are the input images themselves."""
        known = self.events.get(id(tensor))
        if known is not None:
            return known[1]
        if self.spiking_network and is_binary_tensor(tensor) and not self._is_input(tensor):
            return tensor
        return None

    def _is_input(self, tensor: torch.Tensor) -> bool:
        """Whether ``tensor`` is the input images, at one step or repeated over steps."""
        size = self.inputs[0].numel() * self.images
        if tensor.numel() % size:
            return False
        return bool((tensor.reshape(-1, size) == self.inputs.reshape(1, size)).all())

    def neuron(self, name: str, module: nn.Module, output: torch.Tensor | tuple) -> None:
        library = library_of(module)
        if library is not None:  # another library's neuron: its spikes, time-major when it took a sequence
            output = library.spikes(output)
            time_major = output.dim() > 1 and output.shape[0] != self.images and output.shape[1] == self.images
            steps = output.shape[0] if time_major else 1
        else:
            steps = module.timesteps if isinstance(module, SpikingActivation) else 1
        spikes = output.reshape(steps, self.images, -1)
        tally = self.tallies.get(name)
        if tally is None:
            self.tallies[name] = SpikingTally(spikes.shape[2], steps, _per_image(spikes))
        else:  # a single-step neuron, called once per step
            tally.steps += steps
            tally.spikes += _per_image(spikes)
        self.mark(output, output)

    def pass_through(self, module: nn.Module, inputs: torch.Tensor, output: torch.Tensor) -> None:
        spikes = self.events.get(id(inputs))
        if spikes is not None:
            self.mark(output, output if spikes[1] is inputs else module.forward(spikes[1]))

    def synapse(self, name: str, module: nn.Module, inputs: torch.Tensor, output: torch.Tensor) -> None:
        tally = _synaptic_tally(module, inputs, output, self.images, self.spikes_in(inputs))
        previous = self.tallies.get(name)
        if previous is None:
            self.tallies[name] = tally
        else:  # a layer of a single-step network, called once per step
            previous.synops += tally.synops
            previous.macs += tally.macs


def is_neuron(module: nn.Module) -> bool:
    """Whether ``module`` is a spiking neuron layer: ours, a user's spikingjelly one, or another library's."""
    return isinstance(module, _NEURONS) or library_of(module) is not None


def _synaptic_tally(
    module: nn.Module, inputs: torch.Tensor, output: torch.Tensor, images: int, spikes: torch.Tensor | None
) -> SynapticTally:
    """SynOps (fed ``spikes``) or else MACs per image of one call of a convolution or linear layer."""
    trailing = 1 if isinstance(module, nn.Linear) else module.weight.dim() - 1
    zeros = torch.zeros(images, dtype=torch.float64, device=inputs.device)
    if spikes is not None:
        if isinstance(module, nn.Linear):
            synops = _per_image(_time_major(spikes, images, 1)) * module.out_features
        else:
            synops = _fan_out(module, spikes.flatten(0, spikes.dim() - trailing - 1)).reshape(-1, images).sum(0)
        return SynapticTally(type(module).__name__, "spikes", synops, zeros)
    rows = _time_major(inputs, images, trailing)
    if isinstance(module, nn.Linear):
        per_step = module.in_features * module.out_features
    else:
        per_step = _time_major(output, images, trailing)[0, 0].numel() * module.weight[0].numel()
    steps = torch.where(_repeated_frame(rows), 1, rows.shape[0]).double()
    return SynapticTally(type(module).__name__, "real values", zeros, steps * per_step)


@contextmanager
def _counting(model: nn.Module, state: _Pass) -> Iterator[None]:
    """Hooks that tally ``model``'s layers into ``state`` while inside."""
    handles = []
    for name, module in model.named_modules():
        if is_neuron(module):
            handles.append(module.register_forward_hook(lambda module, args, output, name=name: state.neuron(name, module, output)))
        elif isinstance(module, _SYNAPTIC):
            handles.append(
                module.register_forward_hook(lambda module, args, output, name=name: state.synapse(name, module, args[0], output))
            )
        elif isinstance(module, _PASS_THROUGH):
            handles.append(module.register_forward_hook(lambda module, args, output: state.pass_through(module, args[0], output)))
    for module in model.modules():
        if isinstance(module, Classifier):
            handles += _normalised_input_spikes(module, state)
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _normalised_input_spikes(model: Classifier, state: _Pass) -> list:
    """Hooks marking the backbone's input as spikes when the encoder emitted spikes (Poisson): the
    registry's models normalise the encoder's output, ``(s - mean) / std``, before the backbone."""
    emitted: list[torch.Tensor] = []

    def encoded(module, args, output) -> None:
        emitted[:] = [output]

    def entering(module, args) -> None:
        if emitted and emitted[0].numel() == args[0].numel() and is_binary_tensor(emitted[0]):
            state.mark(args[0], emitted[0].reshape(args[0].shape))

    return [model.encoder.register_forward_hook(encoded), model.backbone.register_forward_pre_hook(entering)]


@contextmanager
def _eager_neurons(model: nn.Module) -> Iterator[None]:
    """Spiking layers through spikingjelly's recurrence (the same spikes as the compiled kernel,
    which a shared stem calls past the layer's forward, unseen by hooks)."""
    layers = [module for module in model.modules() if isinstance(module, SpikingActivation)]
    compiled = [layer.compiled for layer in layers]
    for layer in layers:
        layer.compiled = False
    try:
        yield
    finally:
        for layer, was in zip(layers, compiled):
            layer.compiled = was


def count_operations(model: nn.Module, images: torch.Tensor) -> dict[str, SpikingTally | SynapticTally]:
    """The tallies of every spiking and synaptic layer of ``model`` over one forward of ``images``,
    per image, by layer name in the order the layers first ran (one draw of a stochastic model)."""
    spiking = any(is_neuron(module) for module in model.modules())
    state = _Pass(images, spiking)
    with _counting(model, state), _eager_neurons(model), torch.inference_mode():
        model(images)
    return state.tallies


def measure(model: nn.Module, images: torch.Tensor, draws: int = 1, seed: int | None = None) -> dict:
    """The counts of ``images`` as plain data, averaged over ``draws`` draws of a stochastic model
    (seeded with ``seed`` first; a deterministic model runs once): the draws run, per
    image the spikes, SynOps and MACs, and per layer their totals over the batch (a batch's part of
    a record, see `summarise`)."""
    if not is_stochastic(model):
        draws = 1
    elif seed is not None:
        reseed(model, seed)
    runs = [count_operations(model, images) for _ in range(draws)]
    layers, spikes, synops, macs = [], 0.0, 0.0, 0.0
    for name, first in runs[0].items():
        tallies = [run[name] for run in runs]
        if isinstance(first, SpikingTally):
            count = sum(tally.spikes for tally in tallies) / draws
            layers.append({"layer": name, "kind": "spiking", "neurons": first.neurons, "steps": first.steps, "spikes": float(count.sum())})
            spikes = spikes + count
        else:
            layer_synops = sum(tally.synops for tally in tallies) / draws
            layer_macs = sum(tally.macs for tally in tallies) / draws
            layers.append(
                {
                    "layer": name,
                    "kind": "synaptic",
                    "operation": first.operation,
                    "input": first.driven_by,
                    "synops": float(layer_synops.sum()),
                    "macs": float(layer_macs.sum()),
                }
            )
            synops, macs = synops + layer_synops, macs + layer_macs
    zero = [0.0] * len(images)
    return {
        "images": len(images),
        "draws": draws,
        "spikes": spikes.tolist() if torch.is_tensor(spikes) else zero,
        "synops": synops.tolist() if torch.is_tensor(synops) else zero,
        "macs": macs.tolist() if torch.is_tensor(macs) else zero,
        "layers": layers,
    }


def summarise(parts: list[dict]) -> dict:
    """Per-image averages over the batches' `measure` results: spikes, firing rate, SynOps, MACs,
    energy (pJ), and each layer's, in the order the layers ran."""
    images = sum(part["images"] for part in parts)
    layers: dict[str, dict] = {}
    for part in parts:
        for entry in part["layers"]:
            total = layers.setdefault(entry["layer"], {**entry, **{key: 0.0 for key in ("spikes", "synops", "macs") if key in entry}})
            for key in ("spikes", "synops", "macs"):
                if key in entry:
                    total[key] += entry[key]
    shown, neuron_steps = [], 0
    for entry in layers.values():
        entry = {**entry, **{key: entry[key] / images for key in ("spikes", "synops", "macs") if key in entry}}
        if entry["kind"] == "spiking":
            neuron_steps += entry["neurons"] * entry["steps"]
            entry["firing_rate"] = entry["spikes"] / (entry["neurons"] * entry["steps"]) if entry["neurons"] else 0.0
        else:
            entry["energy_pj"] = energy_pj(entry["synops"], entry["macs"])
        shown.append(entry)
    spikes = sum(sum(part["spikes"]) for part in parts) / images
    synops = sum(sum(part["synops"]) for part in parts) / images
    macs = sum(sum(part["macs"]) for part in parts) / images
    return {
        "images": images,
        "spikes": spikes,
        "firing_rate": spikes / neuron_steps if neuron_steps else None,
        "synops": synops,
        "macs": macs,
        "energy_pj": energy_pj(synops, macs),
        "layers": shown,
    }


def per_image_energy(part: dict) -> list[float]:
    """Each image's estimated energy (pJ) in one batch's `measure` result."""
    return [energy_pj(synops, macs) for synops, macs in zip(part["synops"], part["macs"])]


def record_energy(parts: list[dict]) -> dict:
    """A record's ``energy``: the constants, the draws averaged, and the per-image summaries of the
    clean inputs and (after an attack) the protocol's final adversarial inputs; ``parts`` are the
    batches' ``{"clean": ..., "adversarial": ...}`` `measure` results, in order."""
    adversarial = [part["adversarial"] for part in parts]
    return {
        "constants": CONSTANTS,
        "draws": parts[0]["clean"]["draws"],
        "clean": summarise([part["clean"] for part in parts]),
        "adversarial": summarise(adversarial) if all(part is not None for part in adversarial) else None,
    }


def measure_energy(
    model: nn.Module, images: torch.Tensor, *, draws: int = 1, seed: int = 0, batch_size: int = 128, device: str = "cpu"
) -> dict:
    """Per-image spikes, firing rates, SynOps, MACs and estimated energy of any model on ``images``
    (in [0, 1]), with each layer's: a registered model, a user's spikingjelly SNN (wrapped as
    `benchmark` wraps it) or a plain module. A stochastic model is averaged over ``draws`` draws,
    its stream started from ``seed``. Returns the constants, the draws and the summary of `summarise`."""
    device = resolve_device(device)
    images = images.to(device)
    model = as_attackable(model.to(device).eval(), images[:8], seed)
    parts = [
        measure(model, images[start : start + batch_size], draws, batch_seed(seed, index))
        for index, start in enumerate(range(0, len(images), batch_size))
    ]
    return {"constants": CONSTANTS, "draws": parts[0]["draws"], **summarise(parts)}
