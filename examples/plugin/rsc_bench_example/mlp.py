"""An architecture: a two-layer perceptron with the activation slot between its layers."""

import math

from torch import nn

from robustbench_snn.models import register_architecture


@register_architecture
def example_mlp(activation, input_shape, num_classes, hidden: int = 64):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), activation(), nn.Linear(hidden, num_classes))
