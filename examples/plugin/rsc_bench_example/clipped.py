"""A neuron type: LIF neurons that clip each step's input current at +-INPUT_CLIP, so no input,
however perturbed, drives a neuron harder than a bounded current (a toy defence, for the example).

It is one subclass of `EagerActivation`, which runs the recurrence itself: every gradient mode then
applies at the clipped charge with no code here, the energy pass counts its spikes as any spiking
layer's, and NIR, whose LIF has no input clip, refuses it with the reason below.
"""

import torch
from pydantic import Field

from robustbench_snn.config import Strict
from robustbench_snn.defences import NeuronType, register_neuron
from robustbench_snn.models.neurons import EagerActivation


class ClippedInputLIF(EagerActivation):
    nir_refusal = "NIR's LIF takes its input current unclipped"

    def extra_repr(self) -> str:
        return f"input clipped at {self.config.params['input_clip']}"

    def _charge(self, potential: torch.Tensor, current: torch.Tensor, step: int) -> torch.Tensor:
        clip = self.config.params["input_clip"]
        return super()._charge(potential, current.clamp(-clip, clip), step)


class ClippedParameters(Strict):
    input_clip: float = Field(gt=0, le=1e3, allow_inf_nan=False, description="the largest input current a neuron takes per step")


register_neuron(
    NeuronType(
        name="example-clipped", summary="LIF with its input current clipped (example)", layer=ClippedInputLIF, parameters=ClippedParameters
    )
)
