"""The model a user gets: encoder -> normalisation -> backbone -> logits averaged over T.

One class serves SNNs and ANNs: an ANN is the same pipeline with ReLU activations and T = 1.
Neuron state is reset at the start of every forward, so independent calls never leak state.

When the encoder repeats one frame over the T steps (direct coding, RSC-I) and the model is in
eval mode, the backbone's stem (its stateless layers before the first spiking layer) runs once
on that frame and its output is repeated: the same values as running it T times, at 1/T the cost
(``share_stem = False`` gives the plain path).
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
from robustbench_snn.models.gradients import GradientMode
from robustbench_snn.models.neurons import NeuronConfig, SpikingActivation, SpikingModel, with_rate_ann_gradient
from robustbench_snn.models.noisy_neurons import without_firing_noise
from robustbench_snn.seeds import layer_seed

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


class Classifier(SpikingModel, nn.Module):
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
        self.gradient = GradientMode()
        self.stem_length = _stem_length(backbone)
        self.share_stem = True
        # False in the deterministic relative: noisy neurons fire on their noise-free potentials.
        self.firing_noise = True

    @property
    def stochastic(self) -> bool:
        """Whether forwards on one input may differ: a stochastic coding, or neurons with noise of their own."""
        return self.encoder.stochastic or (self.firing_noise and any(layer.stochastic for layer in self.spiking_layers))

    def seed(self, seed: int) -> None:
        """Restart every random stream of the model: its encoder's at ``seed``, each noisy layer's apart from it."""
        if self.encoder.stochastic:
            self.encoder.seed(seed)
        for number, layer in enumerate(layer for layer in self.spiking_layers if layer.stochastic):
            layer.seed(layer_seed(seed, number))

    @property
    def spiking_layers(self) -> list[SpikingActivation]:
        return [module for module in self.backbone.modules() if isinstance(module, SpikingActivation)]

    def expectation_relative(self) -> "Classifier | None":
        """The same weights fed the encoder's expectation (direct coding of x for Poisson and RSC),
        with noisy neurons firing on their noise-free potentials: a deterministic relative whose
        gradients attack this model by transfer; None if the model is deterministic already."""
        if not self.stochastic:
            return None
        encoder = self.encoder.expectation() or self.encoder
        relative = Classifier(
            self.backbone, encoder, self.timesteps, tuple(self.mean.flatten().tolist()), tuple(self.std.flatten().tolist())
        )
        relative.share_stem = self.share_stem
        relative.firing_noise = False
        return relative.to(self.mean.device).eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.firing_noise:
            with without_firing_noise(self.spiking_layers):
                return self._forward(images)
        return self._forward(images)

    def _forward(self, images: torch.Tensor) -> torch.Tensor:
        functional.reset_net(self.backbone)
        rate_gradient = self.gradient.rule.rate_ann and torch.is_grad_enabled() and bool(self.spiking_layers)
        if self.share_stem and self.stem_length and self.timesteps > 1 and self.encoder.repeats_frame and not self.training:
            frame = self.backbone[: self.stem_length]((self.encoder.frame(images) - self.mean) / self.std)
            if rate_gradient:
                currents = frame.unsqueeze(0).expand(self.timesteps, *frame.shape).flatten(0, 1)
                logits = self._with_rate_ann_gradient(self.backbone[self.stem_length :], currents)
            else:
                logits = self.backbone[self.stem_length + 1 :](self.backbone[self.stem_length].constant_input(frame))
        else:
            currents = (self.encoder(images, self.timesteps).flatten(0, 1) - self.mean) / self.std
            logits = self._with_rate_ann_gradient(self.backbone, currents) if rate_gradient else self.backbone(currents)
        return logits.view(self.timesteps, images.shape[0], -1).mean(0)

    def _with_rate_ann_gradient(self, network: nn.Module, currents: torch.Tensor) -> torch.Tensor:
        """The SNN's logits, carrying the gradient of the rate ANN with the same weights."""
        return with_rate_ann_gradient(lambda: network(currents), self.spiking_layers)


def _stem_length(backbone: nn.Module) -> int:
    """How many convolution and batch-norm layers a sequential backbone has before its first spiking layer (else 0)."""
    if not isinstance(backbone, nn.Sequential):
        return 0
    length = 0
    while length < len(backbone) and isinstance(backbone[length], (nn.Conv2d, nn.BatchNorm2d)):
        length += 1
    return length if length < len(backbone) and isinstance(backbone[length], SpikingActivation) else 0


def build_classifier(spec: ModelSpec, dataset: DatasetInfo, seed: int | None = None) -> Classifier:
    """A freshly initialised classifier for ``spec`` on ``dataset``; ``seed`` seeds its randomness (`Classifier.seed`)."""
    if spec.kind == "snn":
        neuron = spec.neuron.layer_class()

        def activation() -> nn.Module:
            return neuron(spec.timesteps, spec.neuron)
    else:
        activation = nn.ReLU
    backbone = build_backbone(spec.architecture, activation, dataset.input_shape, dataset.num_classes, **spec.architecture_args)
    encoder = build_encoder(spec.encoding, **spec.encoding_params)
    model = Classifier(backbone, encoder, spec.timesteps, dataset.mean, dataset.std)
    if seed is not None:
        model.seed(seed)
    return model
