"""HoSNN (Geng & Li, arXiv 2308.10373): threshold-adapting LIF neurons, adversarially trained.

As the authors do, a clean-trained network comes first: a registered LIF SNN of the same
architecture, coding and timesteps (``--clean-model``) gives the new network its weights and each
neuron its neural dynamic signature, its mean potential at every step over the first
`SIGNATURE_IMAGES` training images (`robustbench_snn.models.adaptive_threshold`). Training then
runs on cross-entropy at FGSM examples of the current weights (radius ``hosnn_eps``: a quarter of
the threat model's by default, as the authors train at 2/255 against 8/255), learning the weights
and the adaptation rates, which are kept non-negative after every step. The signatures stay fixed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from robustbench_snn.attacks.protocol import AttackSpec
from robustbench_snn.data import dataset_info
from robustbench_snn.errors import UserError
from robustbench_snn.models import Classifier, ModelSpec, SpikingActivation
from robustbench_snn.models.adaptive_threshold import AdaptiveThresholdActivation, recorded_potentials
from robustbench_snn.training.recipes import AdversarialTraining

SIGNATURE_IMAGES = 1024


def neural_dynamic_signature(clean: Classifier, batches: Iterable[torch.Tensor], limit: int = SIGNATURE_IMAGES) -> list[torch.Tensor]:
    """Per spiking layer of ``clean``, its neurons' mean potential per step ``[T, *features]``
    over the first ``limit`` images of ``batches``."""
    layers = clean.spiking_layers
    sums: list[torch.Tensor | None] = [None] * len(layers)

    def record(index: int):
        def hook(layer: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            total = recorded_potentials(layer, inputs[0]).sum(1)
            sums[index] = total if sums[index] is None else sums[index] + total

        return hook

    handles = [layer.register_forward_pre_hook(record(index)) for index, layer in enumerate(layers)]
    seen, share_stem = 0, clean.share_stem
    clean.share_stem = False  # every layer's forward sees its inputs over time
    try:
        with torch.no_grad():
            for images in batches:
                images = images[: limit - seen]
                clean.eval()(images)
                seen += len(images)
                if seen >= limit:
                    break
    finally:
        clean.share_stem = share_stem
        for handle in handles:
            handle.remove()
    return [total / seen for total in sums]


class HomeostaticTraining(AdversarialTraining):
    """FGSM adversarial training of a TA-LIF network started from a clean LIF network's weights and signatures."""

    def __init__(self, clean: Classifier, eps: float, seed: int) -> None:
        super().__init__(AttackSpec(attack="fgsm", norm="Linf", eps=eps, random_start=False), seed)
        self.clean = clean

    def prepare(self, model: Classifier, images: Iterable[torch.Tensor]) -> None:
        """Take the clean network's weights, and each neuron's signature from ``images`` (clean training images)."""
        missing, unexpected = model.load_state_dict(self.clean.state_dict(), strict=False)
        adaptive = [layer for layer in model.spiking_layers if isinstance(layer, AdaptiveThresholdActivation)]
        own = {name for name, _ in model.named_parameters() if name.endswith(".rate")}
        own |= {name for name, _ in model.named_buffers() if name.endswith(".target")}
        if unexpected or set(missing) != own or len(adaptive) != len(self.clean.spiking_layers):
            raise UserError("the clean model's layers do not match the threshold-adapting network's")
        for layer, signature in zip(adaptive, neural_dynamic_signature(self.clean, images)):
            layer.target.copy_(signature.to(layer.target.device))

    def after_step(self, model: nn.Module) -> None:
        for layer in model.modules():
            if isinstance(layer, AdaptiveThresholdActivation):
                layer.keep_rate_non_negative()


def build(model: Classifier, spec: ModelSpec, dataset: str, config: Any, device: str) -> HomeostaticTraining:
    from robustbench_snn.registry import load_model

    if spec.kind != "snn" or spec.neuron.type != "adaptive-threshold":
        raise UserError("hosnn trains threshold-adapting SNNs; pass --kind snn and --threshold-tau (the authors use 1.5 on MNIST)")
    clean = load_model(config.options["clean_model"], device=device)
    card = clean.card
    if (
        card.kind != "snn"
        or card.dataset != dataset
        or card.architecture.name != spec.architecture
        or card.encoding.name != spec.encoding
        or card.timesteps != spec.timesteps
        or not all(type(layer) is SpikingActivation for layer in clean.spiking_layers)
    ):
        raise UserError(
            f"clean model {config.options['clean_model']!r} must be a LIF SNN of architecture {spec.architecture!r}, "
            f"{spec.encoding} coding and T={spec.timesteps}, trained on {dataset}"
        )
    info = dataset_info(dataset)
    with torch.no_grad():  # the per-neuron state takes its shape from a first forward
        model.eval()(torch.zeros(1, *info.input_shape, device=device))
    return HomeostaticTraining(clean, config.options["hosnn_eps"], config.seed)
