"""Norse (Pehle and Pedersen): cells (``LIFCell``, one step, called by the user's time loop) and
whole-sequence modules (``LIF``, input ``[T, B, ...]``), each returning ``(spikes, state)``. Norse
keeps no state inside its modules (the state is passed and returned), so there is nothing to reset."""

from __future__ import annotations

from torch import nn

from robustbench_snn.models.libraries import SNNLibrary, register_library


def _classes() -> tuple[type, ...]:
    from norse.torch.module.snn import SNN, SNNCell

    return (SNNCell, SNN)


def _reset(network: nn.Module) -> None:
    return None


def _spikes(output):
    return output[0] if isinstance(output, tuple) else output


register_library(SNNLibrary("norse", "norse", _classes, _reset, _spikes))
