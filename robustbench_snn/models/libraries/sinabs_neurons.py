"""sinabs (SynSense): ``IAF``, ``LIF`` and the other ``StatefulLayer``s, whose state lives inside
the layer (reset here with ``reset_states``); time is folded into the batch by squeeze layers or
given as ``[B, T, ...]``, and a layer returns its spikes."""

from __future__ import annotations

import torch
from torch import nn

from robustbench_snn.models.libraries import SNNLibrary, register_library


def _classes() -> tuple[type, ...]:
    from sinabs.layers import StatefulLayer

    return (StatefulLayer,)


def _reset(network: nn.Module) -> None:
    # Fresh zero states rather than sinabs' in-place reset_states: a state made under inference
    # mode (a decision) cannot be updated in place by the next, differentiable forward.
    for module in network.modules():
        if isinstance(module, _classes()) and module.is_state_initialised():
            for name, state in list(module.named_buffers(recurse=False)):
                module.register_buffer(name, torch.zeros_like(state))


def _spikes(output):
    return output


register_library(SNNLibrary("sinabs", "sinabs", _classes, _reset, _spikes))
