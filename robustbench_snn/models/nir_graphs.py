"""NIR, the neuromorphic exchange format: a registry SNN out as a NIR graph, a NIR graph in as an SNN.

What crosses is the backbone: Conv2d, BatchNorm2d, LIF neurons, AvgPool2d / SumPool2d, Flatten,
Linear / Affine and Scale nodes, chained or joined by skip connections (a node sums its inputs, as
NIR says). What NIR cannot say travels in the graph's metadata (``rsc_bench``): the coding, the
number of time steps and the input normalisation, so a round trip rebuilds the same model, with
identical logits. BatchNorm, which NIR lacks, goes out as the per-channel 1x1 convolution it
computes (a diagonal one, what another library reads) with its statistics in the node's metadata (what the round
trip restores); so do the exact layer kinds NIR folds together (adaptive pooling, a bias-free
convolution).

Time: our neuron is the forward-Euler step of NIR's ``tau dv/dt = (v_leak - v) + r I`` with
``dt = 1`` (spikingjelly's ``LIFNode``, ``decay_input``): it goes out with that tau, ``r = 1`` and
``v_leak = v_reset``. A graph from another library is in its own time unit (snnTorch writes
``dt = 1e-4``): pass ``dt``, and ``tau / dt`` becomes our tau while ``r`` scales the input current.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable
from importlib.metadata import version as installed_version
from pathlib import Path

import numpy as np
import torch
from torch import nn

from robustbench_snn.data import dataset_info
from robustbench_snn.errors import UserError
from robustbench_snn.files import replacing
from robustbench_snn.models.architectures import BasicBlock
from robustbench_snn.models.classifier import Classifier
from robustbench_snn.models.encoders import build_encoder
from robustbench_snn.models.neurons import NeuronConfig, SpikingActivation

METADATA_KEY = "rsc_bench"
FORMAT = 1
NODE_KINDS = ("Input", "Output", "Conv2d", "LIF", "AvgPool2d", "SumPool2d", "Flatten", "Affine", "Linear", "Scale")


# The first nir whose nodes take metadata (every node this module writes carries some).
NIR_NEEDED = (1, 0, 5)


def _nir():
    try:
        import nir
    except ImportError:
        raise UserError("NIR support needs the nir package: pip install 'robustbench-snn[nir]'") from None
    found = installed_version("nir")
    if tuple(int(part) for part in re.findall(r"\d+", found)[:3]) < NIR_NEEDED:
        raise UserError(
            f"NIR support needs nir >= {'.'.join(map(str, NIR_NEEDED))} (its nodes take metadata); nir {found} is installed: "
            "pip install 'nir>=1.0.5' (sinabs 3.1.3 pins nir <= 1.0.4; pip install 'robustbench-snn[sinabs,nir]' "
            "picks a sinabs that does not)"
        )
    return nir


class Scale(nn.Module):
    """Multiplies by a fixed factor (NIR's Scale node, an input current's ``r``, a SumPool's area)."""

    def __init__(self, factor: torch.Tensor | float) -> None:
        super().__init__()
        self.register_buffer("factor", torch.as_tensor(factor, dtype=torch.float32))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs * self.factor


class GraphBackbone(nn.Module):
    """A NIR graph with skip connections run on time-flattened tensors: each node, in an order
    where its inputs come first, applied to the sum of its inputs (in the graph's edge order)."""

    def __init__(self, layers: dict[str, nn.Module], order: list[str], inputs: dict[str, list[str]], source: str, sink: str) -> None:
        super().__init__()
        self.layers = nn.ModuleDict(layers)
        self.order, self.inputs, self.source, self.sink = order, inputs, source, sink

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        values = {self.source: images}
        for name in self.order:
            incoming = [values[previous] for previous in self.inputs[name]]
            total = incoming[0]
            for more in incoming[1:]:
                total = total + more
            values[name] = self.layers[name](total)
        return values[self.sink]

    def extra_repr(self) -> str:  # the wiring is printed, so it is part of a result's identity
        edges = ", ".join(f"{'+'.join(self.inputs[name])}->{name}" for name in self.order)
        return f"source={self.source}, sink={self.sink}, edges=[{edges}]"


# Export --------------------------------------------------------------------------------------


def to_nir(model: Classifier) -> object:
    """The NIR graph of a registry SNN (or one imported from NIR), its coding in the metadata."""
    nir = _nir()
    if not isinstance(model, Classifier) or not model.spiking_layers:
        raise UserError("NIR describes spiking networks: export an SNN of the registry (an ANN has no LIF layers)")
    described = _description(model)
    input_shape = tuple(described["input_shape"])
    shapes = _layer_shapes(model, input_shape)
    writer = _GraphWriter(nir, shapes)
    writer.nodes["input"] = nir.Input(input_type={"input": np.array(input_shape)})
    last = writer.emit(model.backbone, ["input"])
    writer.add("output", nir.Output(output_type={"output": np.array(shapes[id(model.backbone)][1])}), last)
    metadata = {
        "format": FORMAT,
        "timesteps": model.timesteps,
        "encoding": model.encoder.name,
        "mean": model.mean.flatten().tolist(),
        "std": model.std.flatten().tolist(),
        **described,
    }
    return nir.NIRGraph(nodes=writer.nodes, edges=writer.edges, metadata={METADATA_KEY: json.dumps(metadata)})


def export_nir(model: Classifier, path: str | os.PathLike) -> Path:
    """Write `to_nir` of ``model`` to ``path`` (a ``.nir`` file, HDF5)."""
    graph = to_nir(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as partial:
        _nir().write(partial, graph)
    return path


def _description(model: Classifier) -> dict:
    """What the graph's metadata says of ``model`` besides its layers: from the card of a registry
    model, else from the NIR graph it was loaded from (``model`` names registry models only)."""
    card = getattr(model, "card", None)
    if card is not None:
        shape = list(dataset_info(card.dataset).input_shape)
        return {"input_shape": shape, "encoding_params": card.encoding.params(), "dataset": card.dataset, "model": card.name}
    loaded = getattr(model, "nir_metadata", None)
    if loaded is None:
        raise UserError("the model's input shape and coding are unknown: export a registry model or one imported from NIR")
    encoding_params = loaded.get("encoding_params", {})
    return {"input_shape": loaded["input_shape"], "encoding_params": encoding_params, "dataset": loaded.get("dataset"), "model": None}


Shapes = dict[int, tuple[tuple[int, ...], tuple[int, ...]]]


def _layer_shapes(model: Classifier, input_shape: tuple[int, ...]) -> Shapes:
    """Each module's input and output shape (without batch and time), from one forward of a blank image."""
    shapes: Shapes = {}
    hooks = [module.register_forward_hook(_recorder(shapes)) for module in model.backbone.modules()]
    try:
        with torch.no_grad():
            share, model.share_stem = model.share_stem, False
            model(torch.zeros(1, *input_shape, device=model.mean.device))
    finally:
        model.share_stem = share
        for hook in hooks:
            hook.remove()
    return shapes


def _recorder(shapes: Shapes):
    def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        shapes[id(module)] = (tuple(inputs[0].shape[1:]), tuple(output.shape[1:]))

    return record


class _GraphWriter:
    """Builds the nodes and edges of a backbone, module by module."""

    def __init__(self, nir, shapes: Shapes) -> None:
        self.nir, self.shapes = nir, shapes
        self.nodes: dict = {}
        self.edges: list[tuple[str, str]] = []

    def add(self, name: str, node: object, sources: Iterable[str]) -> list[str]:
        self.nodes[name] = node
        self.edges += [(source, name) for source in sources]
        return [name]

    def emit(self, module: nn.Module, sources: list[str]) -> list[str]:
        """Add ``module`` fed by the sum of ``sources``; return the nodes whose sum is its output."""
        if isinstance(module, nn.Sequential):
            for child in module:
                sources = self.emit(child, sources)
            return sources
        if isinstance(module, nn.Identity):
            return sources
        if isinstance(module, BasicBlock):
            body = self.emit(module.body, sources)
            shortcut = self.emit(module.shortcut, sources)
            return self.emit(module.activation, body + shortcut)
        return self.add(str(len(self.nodes) - 1), self._node(module), sources)

    def _node(self, module: nn.Module) -> object:
        nir, (in_shape, shape) = self.nir, self.shapes[id(module)]
        if isinstance(module, nn.Conv2d):
            if module.padding_mode != "zeros":
                raise UserError(f"NIR convolutions pad with zeros; this one pads with {module.padding_mode}")
            bias = module.bias.detach().cpu().numpy() if module.bias is not None else np.zeros(module.out_channels, np.float32)
            return nir.Conv2d(
                input_shape=None,
                weight=module.weight.detach().cpu().numpy(),
                stride=module.stride,
                padding=module.padding,
                dilation=module.dilation,
                groups=module.groups,
                bias=bias,
                metadata={"bias": module.bias is not None},
            )
        if isinstance(module, nn.BatchNorm2d):
            scale = module.weight / torch.sqrt(module.running_var + module.eps)
            statistics = {key: getattr(module, key).detach().cpu().numpy() for key in ("weight", "bias", "running_mean", "running_var")}
            return nir.Conv2d(
                input_shape=None,
                weight=torch.diag(scale.detach()).cpu().numpy()[:, :, None, None],  # dense: NIR types ignore groups
                stride=1,
                padding=0,
                dilation=1,
                groups=1,
                bias=(module.bias - module.running_mean * scale).detach().cpu().numpy(),
                metadata={"batch_norm": {**statistics, "eps": module.eps}},
            )
        if isinstance(module, SpikingActivation):
            config = module.config
            if module.nir_refusal is not None:
                raise UserError(f"{type(module).__name__} has no NIR node: {module.nir_refusal}")
            if config.v_reset is None:
                raise UserError("NIR's LIF resets to v_reset; a soft-reset LIF (v_reset None) has no NIR node")
            return nir.LIF(
                tau=np.full(shape, config.tau, np.float32),
                r=np.ones(shape, np.float32),
                v_leak=np.full(shape, config.v_reset, np.float32),
                v_threshold=np.full(shape, config.v_threshold, np.float32),
                v_reset=np.full(shape, config.v_reset, np.float32),
                metadata={
                    "dt": 1.0,
                    "surrogate": config.surrogate,
                    "surrogate_alpha": config.surrogate_alpha,
                    "detach_reset": config.detach_reset,
                },
            )
        if isinstance(module, nn.AvgPool2d):
            if module.ceil_mode or not module.count_include_pad or module.divisor_override:
                raise UserError("NIR's AvgPool2d is the plain average: no ceil_mode, count_include_pad=False or divisor_override")
            kernel = _pair(module.kernel_size)
            return nir.AvgPool2d(
                kernel_size=np.array(kernel), stride=np.array(_pair(module.stride or kernel)), padding=np.array(_pair(module.padding))
            )
        if isinstance(module, nn.AdaptiveAvgPool2d):
            if _pair(module.output_size) != (1, 1):
                raise UserError("only global adaptive pooling (output size 1) has a NIR node")
            kernel = np.array(in_shape[1:])
            return nir.AvgPool2d(kernel_size=kernel, stride=kernel, padding=np.array([0, 0]), metadata={"adaptive": True})
        if isinstance(module, nn.Flatten):
            return nir.Flatten(
                input_type={"input": np.array(in_shape)}, start_dim=_without_batch(module.start_dim), end_dim=_without_batch(module.end_dim)
            )
        if isinstance(module, nn.Linear):
            weight = module.weight.detach().cpu().numpy()
            return (
                nir.Affine(weight=weight, bias=module.bias.detach().cpu().numpy()) if module.bias is not None else nir.Linear(weight=weight)
            )
        if isinstance(module, Scale):
            return nir.Scale(scale=module.factor.detach().cpu().numpy())
        raise UserError(
            f"a {type(module).__name__} layer has no NIR node (NIR export knows Conv2d, BatchNorm2d, LIF, pooling, Flatten, Linear)"
        )


def _without_batch(dim: int) -> int:
    """A torch dimension of a batch as NIR counts it (its shapes have no batch dimension)."""
    return dim - 1 if dim > 0 else dim


def _with_batch(dim: int) -> int:
    return int(dim) + 1 if int(dim) >= 0 else int(dim)


def _pair(value: int | tuple | np.ndarray) -> tuple[int, int]:
    values = np.atleast_1d(np.asarray(value)).astype(int).tolist()
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


# Import --------------------------------------------------------------------------------------


def read_nir(source: str | os.PathLike | object) -> object:
    """A NIR graph from a file (or the graph itself), checked to be one."""
    nir = _nir()
    if isinstance(source, nir.NIRGraph):
        return source
    path = Path(source)
    if not path.is_file():
        raise UserError(f"no NIR file {path}")
    try:
        return nir.read(path)
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise UserError(f"{path} is not a NIR graph: {str(error).splitlines()[0] if str(error) else type(error).__name__}") from None


def load_nir(
    source: str | os.PathLike | object,
    *,
    timesteps: int | None = None,
    dt: float | None = None,
    seed: int | None = 0,
) -> Classifier:
    """An SNN built from a NIR graph (file or object), in eval mode: images in [0, 1] -> logits.

    A graph this package wrote brings its coding, time steps and normalisation; for another
    library's graph the model feeds the image to the graph at each of ``timesteps`` steps (direct
    coding, no normalisation) and ``dt`` is the graph's time step (snnTorch: 1e-4).
    """
    graph = read_nir(source)
    metadata = _metadata(graph)
    timesteps = timesteps or metadata.get("timesteps")
    if not timesteps or int(timesteps) < 1:
        raise UserError("this NIR graph does not say how many time steps it runs: pass timesteps")
    dt = dt if dt is not None else (1.0 if metadata else None)  # our own graphs are in steps
    backbone, input_shape = _build_backbone(graph, int(timesteps), dt)
    channels = input_shape[0]
    encoder = build_encoder(metadata.get("encoding", "direct"), seed=seed, **metadata.get("encoding_params", {}))
    mean = tuple(metadata.get("mean", [0.0] * channels))
    std = tuple(metadata.get("std", [1.0] * channels))
    model = Classifier(backbone, encoder, int(timesteps), mean, std)
    model.nir_metadata = {**metadata, "input_shape": list(input_shape)}
    # never a registered name: the rows of a graph are not the registry model's, even when it was exported from one
    model.display_name = "nir:" + (Path(source).stem if isinstance(source, (str, os.PathLike)) else metadata.get("model") or "graph")
    return model.eval()


def is_nir_graph(value: object) -> bool:
    """Whether ``value`` is a NIR graph (without importing nir when the user's program has not)."""
    return "nir" in sys.modules and isinstance(value, sys.modules["nir"].NIRGraph)


def as_model(value: nn.Module | object) -> nn.Module | object:
    """A NIR graph (`is_nir_graph`) built as an SNN by `load_nir`; anything else as it is."""
    return load_nir(value) if is_nir_graph(value) else value


def _metadata(graph) -> dict:
    stored = (graph.metadata or {}).get(METADATA_KEY)
    if stored is None:
        return {}
    if isinstance(stored, bytes):
        stored = stored.decode()
    try:
        metadata = json.loads(str(stored))
    except json.JSONDecodeError:
        raise UserError("the graph's rsc_bench metadata is not the JSON this package writes") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise UserError(f"the graph's rsc_bench metadata is of another format than {FORMAT}")
    return metadata


def _build_backbone(graph, timesteps: int, dt: float | None) -> tuple[nn.Module, tuple[int, ...]]:
    nir = _nir()
    sources = [name for name, node in graph.nodes.items() if isinstance(node, nir.Input)]
    sinks = [name for name, node in graph.nodes.items() if isinstance(node, nir.Output)]
    if len(sources) != 1 or len(sinks) != 1:
        raise UserError(f"a NIR graph to attack has one Input and one Output node; this one has {len(sources)} and {len(sinks)}")
    source, sink = sources[0], sinks[0]
    inputs: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for start, end in graph.edges:
        if start not in graph.nodes or end not in graph.nodes:
            raise UserError(f"the NIR graph has an edge {start} -> {end} to a node it does not have")
        inputs[end].append(start)
    order = _topological_order(graph, source, inputs)
    input_shape = tuple(int(size) for size in np.asarray(next(iter(graph.nodes[source].input_type.values()))).tolist())
    layers = {_module_name(name): _module(graph.nodes[name], timesteps, dt, name) for name in order if name != sink}
    readout = inputs[sink]
    if len(readout) != 1:
        raise UserError("the NIR graph's Output node has more than one input")
    if _is_chain(order, inputs, source):
        return nn.Sequential(*(layers[_module_name(name)] for name in order if name != sink)), input_shape
    renamed = {_module_name(name): [_module_name(previous) for previous in inputs[name]] for name in order if name != sink}
    steps = [_module_name(name) for name in order if name != sink]
    return GraphBackbone(layers, steps, renamed, _module_name(source), _module_name(readout[0])), input_shape


def _topological_order(graph, source: str, inputs: dict[str, list[str]]) -> list[str]:
    """The nodes reachable from the input, each after all of its inputs; a cycle is an error."""
    outputs: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for end, starts in inputs.items():
        for start in starts:
            outputs[start].append(end)
    waiting = {name: len(starts) for name, starts in inputs.items()}
    ready, order = [source], []
    while ready:
        name = ready.pop(0)
        if name != source:
            order.append(name)
        for following in outputs[name]:
            waiting[following] -= 1
            if waiting[following] == 0:
                ready.append(following)
    unreached = [name for name, count in waiting.items() if count > 0]
    if unreached:
        raise UserError(
            f"the NIR graph has recurrent connections or nodes not fed by its input ({', '.join(sorted(unreached)[:5])}): not supported"
        )
    return order


def _is_chain(order: list[str], inputs: dict[str, list[str]], source: str) -> bool:
    previous = source
    for name in order:
        if inputs[name] != [previous]:
            return False
        previous = name
    return True


def _module_name(name: str) -> str:
    return "node_" + "".join(character if character.isalnum() else "_" for character in str(name))


def _uniform(values: np.ndarray, what: str, name: str) -> float:
    flat = np.unique(np.asarray(values, dtype=np.float64))
    if flat.size != 1:
        raise UserError(f"NIR node {name}: {what} differs between neurons; the benchmark's LIF layers share one value")
    return float(flat[0])


def _module(node, timesteps: int, dt: float | None, name: str) -> nn.Module:
    nir = _nir()
    metadata = node.metadata or {}
    if isinstance(node, nir.Conv2d):
        return _convolution(node, metadata)
    if isinstance(node, nir.LIF):
        return _lif(node, timesteps, dt, metadata, name)
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        kernel = _pair(node.kernel_size)
        if metadata.get("adaptive"):
            return nn.AdaptiveAvgPool2d(1)
        pool = nn.AvgPool2d(kernel, stride=_pair(node.stride), padding=_pair(node.padding))
        return pool if isinstance(node, nir.AvgPool2d) else nn.Sequential(pool, Scale(float(kernel[0] * kernel[1])))
    if isinstance(node, nir.Flatten):
        return nn.Flatten(_with_batch(node.start_dim), _with_batch(node.end_dim))
    if isinstance(node, (nir.Affine, nir.Linear)):
        weight = torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)
        layer = nn.Linear(weight.shape[1], weight.shape[0], bias=isinstance(node, nir.Affine))
        with torch.no_grad():
            layer.weight.copy_(weight)
            if layer.bias is not None:
                layer.bias.copy_(torch.as_tensor(np.asarray(node.bias), dtype=torch.float32))
        return layer
    if isinstance(node, nir.Scale):
        return Scale(torch.as_tensor(np.asarray(node.scale), dtype=torch.float32))
    if isinstance(node, nir.NIRGraph):
        raise UserError(f"NIR node {name} is a subgraph (a recurrent layer): not supported")
    raise UserError(f"NIR node {name} is a {type(node).__name__}; the benchmark builds SNNs of {', '.join(NODE_KINDS)} nodes")


def _convolution(node, metadata: dict) -> nn.Module:
    weight = torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)
    groups = int(node.groups)
    statistics = metadata.get("batch_norm")
    if statistics is not None:
        norm = nn.BatchNorm2d(weight.shape[0], eps=float(statistics["eps"]))
        with torch.no_grad():
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(norm, key).copy_(torch.as_tensor(np.asarray(statistics[key]), dtype=torch.float32))
        return norm
    padding = node.padding if isinstance(node.padding, str) else _pair(node.padding)
    has_bias = bool(metadata.get("bias", True))
    layer = nn.Conv2d(
        weight.shape[1] * groups,
        weight.shape[0],
        tuple(weight.shape[2:]),
        stride=_pair(node.stride),
        padding=padding,
        dilation=_pair(node.dilation),
        groups=groups,
        bias=has_bias,
    )
    with torch.no_grad():
        layer.weight.copy_(weight)
        if has_bias:
            layer.bias.copy_(torch.as_tensor(np.asarray(node.bias), dtype=torch.float32))
    return layer


def _lif(node, timesteps: int, dt: float | None, metadata: dict, name: str) -> nn.Module:
    step = metadata.get("dt", dt)
    if step is None:
        raise UserError(f"NIR node {name} is a LIF neuron in the graph's own time unit: pass dt (snnTorch writes 1e-4)")
    tau = _uniform(node.tau, "tau", name)
    v_leak = _uniform(node.v_leak, "v_leak", name)
    v_reset = _uniform(node.v_reset, "v_reset", name) if node.v_reset is not None else 0.0
    if v_leak != v_reset:
        raise UserError(f"NIR node {name}: v_leak {v_leak:g} differs from v_reset {v_reset:g}; the benchmark's LIF leaks to its reset")
    config = NeuronConfig(
        tau=tau / float(step),
        v_threshold=_uniform(node.v_threshold, "v_threshold", name),
        v_reset=v_reset,
        surrogate=str(metadata.get("surrogate", "atan")),
        surrogate_alpha=float(metadata.get("surrogate_alpha", 2.0)),
        detach_reset=bool(metadata.get("detach_reset", False)),
    )
    neurons = SpikingActivation(timesteps, config)
    current = _uniform(node.r, "r", name)
    return neurons if current == 1.0 else nn.Sequential(Scale(current), neurons)
