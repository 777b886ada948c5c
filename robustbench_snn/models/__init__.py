"""Encoders, spiking neurons, backbone architectures and the classifier that joins them."""

from robustbench_snn.models.architectures import ARCHITECTURES, build_backbone, register_architecture
from robustbench_snn.models.classifier import KINDS, Classifier, ModelSpec, build_classifier
from robustbench_snn.models.encoders import DirectEncoder, Encoder, PoissonEncoder, RSCEncoder, build_encoder
from robustbench_snn.models.gradients import GRADIENT_MODES, SURROGATES, GradientMode
from robustbench_snn.models.neurons import NeuronConfig, SpikingActivation

__all__ = [
    "ARCHITECTURES",
    "GRADIENT_MODES",
    "KINDS",
    "GradientMode",
    "SURROGATES",
    "Classifier",
    "DirectEncoder",
    "Encoder",
    "ModelSpec",
    "NeuronConfig",
    "PoissonEncoder",
    "RSCEncoder",
    "SpikingActivation",
    "build_backbone",
    "build_classifier",
    "build_encoder",
    "register_architecture",
]
