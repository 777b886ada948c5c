"""The model a user gets: encoder -> normalisation -> backbone -> logits averaged over T.

One class serves SNNs and ANNs: an ANN is the same pipeline with ReLU activations and T = 1.
Neuron state is reset at the start of every forward, so independent calls never leak state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from spikingjelly.activation_based import functional
from torch import nn

from robustbench_snn.data import DatasetInfo
from robustbench_snn.errors import UserError
from robustbench_snn.models.architectures import build_backbone
from robustbench_snn.models.encoders import Encoder, build_encoder
from robustbench_snn.models.neurons import NeuronConfig, SpikingActivation

KINDS = ("ann", "snn")


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build a model's graph (its weights come from a checkpoint)."""

    architecture: str
    kind: str
    encoding: str = "direct"
    encoding_params: dict = field(default_factory=dict)
    timesteps: int = 1
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    architecture_args: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UserError(f"unknown kind {self.kind!r}; choose ann or snn")
        if self.timesteps < 1:
            raise UserError(f"timesteps must be >= 1, got {self.timesteps}")


class Classifier(nn.Module):
    """Maps images in [0, 1] of shape ``[B, C, H, W]`` to logits ``[B, classes]``."""

    def __init__(
        self,
        backbone: nn.Module,
        encoder: Encoder,
        timesteps: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.encoder = encoder
        self.timesteps = timesteps
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    @property
    def stochastic(self) -> bool:
        return self.encoder.stochastic

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        functional.reset_net(self.backbone)
        sequence = self.encoder(images, self.timesteps)
        logits = self.backbone((sequence.flatten(0, 1) - self.mean) / self.std)
        return logits.view(self.timesteps, images.shape[0], -1).mean(0)


def build_classifier(spec: ModelSpec, dataset: DatasetInfo, seed: int | None = None) -> Classifier:
    """A freshly initialised classifier for ``spec`` on ``dataset``; ``seed`` seeds its encoder."""
    if spec.kind == "snn":
        def activation() -> nn.Module:
            return SpikingActivation(spec.timesteps, spec.neuron)
    else:
        activation = nn.ReLU
    backbone = build_backbone(
        spec.architecture, activation, dataset.input_shape, dataset.num_classes, **spec.architecture_args
    )
    encoder = build_encoder(spec.encoding, seed=seed, **spec.encoding_params)
    return Classifier(backbone, encoder, spec.timesteps, dataset.mean, dataset.std)
