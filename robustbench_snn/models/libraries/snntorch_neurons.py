"""snnTorch (Eshraghian et al.): ``Leaky``, ``Synaptic``, ``Alpha`` and the other ``SpikingNeuron``s,
with ``init_hidden`` (state inside the neuron, reset here) or explicit state (the user's forward
starts it); a neuron returns its spikes, or ``(spk, mem)`` / ``(spk, syn, mem)``."""

from __future__ import annotations

from torch import nn

from robustbench_snn.models.libraries import SNNLibrary, register_library


def _classes() -> tuple[type, ...]:
    import snntorch

    return (snntorch.SpikingNeuron,)


def _reset(network: nn.Module) -> None:
    # snnTorch keeps ``init_hidden`` state per class: each class found resets all its instances.
    for cls in {type(module) for module in network.modules() if isinstance(module, _classes()) and getattr(module, "init_hidden", False)}:
        cls.reset_hidden()


def _spikes(output):
    return output[0] if isinstance(output, tuple) else output


register_library(SNNLibrary("snntorch", "snntorch", _classes, _reset, _spikes))
