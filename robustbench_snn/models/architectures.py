"""The builder registry of backbone architectures, shared by SNNs and their ANN twins.

A builder takes an ``activation`` factory (LIF neurons for an SNN, ReLU for an ANN), the input
shape and the number of classes, and returns a module mapping ``[N, C, H, W]`` to logits
``[N, classes]``. Model cards name builders; nothing else can be built from a card.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from robustbench_snn.errors import UserError
from robustbench_snn.plugins import Registry

ActivationFactory = Callable[[], nn.Module]
Builder = Callable[..., nn.Module]

# Every backbone by name: those defined below, then those of installed plug-in packages.
ARCHITECTURES: Registry[Builder] = Registry("architecture", "robustbench_snn.architectures")


def register_architecture(builder: Builder) -> Builder:
    """Function decorator: make the builder available to cards by its function name."""
    return ARCHITECTURES.register(builder.__name__, builder)


def build_backbone(
    name: str,
    activation: ActivationFactory,
    input_shape: tuple[int, int, int],
    num_classes: int,
    **args: object,
) -> nn.Module:
    """Build the registered architecture ``name`` with its card arguments."""
    builder = ARCHITECTURES.lookup(name)
    try:
        return builder(activation, input_shape, num_classes, **args)
    except TypeError as error:
        raise UserError(f"bad arguments for architecture {name!r}: {error}") from None


def _conv_bn(in_channels: int, out_channels: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
    ]


@register_architecture
def small_cnn(
    activation: ActivationFactory,
    input_shape: tuple[int, int, int],
    num_classes: int,
    channels: tuple[int, int] = (16, 32),
    hidden: int = 128,
) -> nn.Module:
    """Two conv-BN-act-pool stages and a two-layer classifier; trains on a CPU in minutes (28x28)."""
    in_channels, height, width = input_shape
    first, second = channels
    return nn.Sequential(
        *_conv_bn(in_channels, first),
        activation(),
        nn.AvgPool2d(2),
        *_conv_bn(first, second),
        activation(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(second * (height // 4) * (width // 4), hidden),
        activation(),
        nn.Linear(hidden, num_classes),
    )


@register_architecture
def hosnn_mnist(activation: ActivationFactory, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """The network HoSNN's authors train on MNIST (their code's Networks/MNIST.yaml): 15 and 40
    convolutions of 5x5 without padding, each followed by neurons and 2x2 pooling (theirs sums with
    a fixed weight, ours averages: the same up to a scale the next layer learns), a hidden layer of
    300 and the classifier; no batch normalisation."""
    in_channels, height, width = input_shape
    flat = 40 * ((height - 4) // 2 - 4) // 2 * (((width - 4) // 2 - 4) // 2)
    return nn.Sequential(
        nn.Conv2d(in_channels, 15, 5),
        activation(),
        nn.AvgPool2d(2),
        nn.Conv2d(15, 40, 5),
        activation(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(flat, 300),
        activation(),
        nn.Linear(300, num_classes),
    )


@register_architecture
def vgg11(
    activation: ActivationFactory,
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> nn.Module:
    """VGG-11 with batch norm, average pooling and a linear readout (as in SNN-RAT)."""
    layers: list[nn.Module] = []
    in_channels = input_shape[0]
    for width in (64, "pool", 128, "pool", 256, 256, "pool", 512, 512, "pool", 512, 512, "pool"):
        if width == "pool":
            layers.append(nn.AvgPool2d(2))
        else:
            layers += [*_conv_bn(in_channels, width), activation()]
            in_channels = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a (projected) shortcut; the activation follows the sum."""

    def __init__(self, activation: ActivationFactory, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(in_channels, out_channels, stride), activation(), *_conv_bn(out_channels, out_channels))
        self.shortcut = (
            nn.Identity()
            if stride == 1 and in_channels == out_channels
            else nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels))
        )
        self.activation = activation()

    def forward(self, x):
        return self.activation(self.body(x) + self.shortcut(x))


def _stage(activation: ActivationFactory, in_channels: int, out_channels: int, blocks: int, stride: int) -> list[nn.Module]:
    return [
        BasicBlock(activation, in_channels if index == 0 else out_channels, out_channels, stride if index == 0 else 1)
        for index in range(blocks)
    ]


def _residual_network(
    activation: ActivationFactory,
    in_channels: int,
    stem: int,
    stages: tuple[tuple[int, int, int], ...],
    head: list[nn.Module],
) -> nn.Module:
    """A conv stem, residual stages of ``(width, blocks, stride)``, global pooling, then ``head``."""
    layers: list[nn.Module] = [*_conv_bn(in_channels, stem), activation()]
    width = stem
    for out_width, blocks, stride in stages:
        layers += _stage(activation, width, out_width, blocks, stride)
        width = out_width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), *head)


@register_architecture
def resnet19(
    activation: ActivationFactory,
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> nn.Module:
    """ResNet-19 of the tdBN paper (Zheng et al. 2021): 128-256-512 stages of 3, 3, 2 blocks."""
    head = [nn.Linear(512, 256), activation(), nn.Linear(256, num_classes)]
    return _residual_network(activation, input_shape[0], 128, ((128, 3, 1), (256, 3, 2), (512, 2, 2)), head)


@register_architecture
def wrn16_4(
    activation: ActivationFactory,
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> nn.Module:
    """Wide ResNet 16-4: a 16-channel stem, then 64-128-256 stages of two blocks each."""
    return _residual_network(activation, input_shape[0], 16, ((64, 2, 1), (128, 2, 2), (256, 2, 2)), [nn.Linear(256, num_classes)])
