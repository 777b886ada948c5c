"""A training recipe: cross-entropy on images with Gaussian noise of standard deviation
EXAMPLE_NOISE_STD added (clipped to [0, 1]), a new draw each batch (a toy defence, for the example).
Its parameter is declared once, in its schema: `rsc-bench train` offers it as an option and the
card records it with the training command."""

import torch
from pydantic import Field
from torch.nn import functional as F

from robustbench_snn.config import Strict
from robustbench_snn.defences import RecipeInfo, register_recipe
from robustbench_snn.errors import UserError
from robustbench_snn.training.recipes import BatchLoss


class NoisyInputTraining:
    def __init__(self, std: float, seed: int) -> None:
        self.std, self.seed = std, seed

    def __call__(self, model, images, labels, step):
        generator = torch.Generator(device=images.device).manual_seed(self.seed * 1_000_003 + step)
        noisy = (images + self.std * torch.randn(images.shape, generator=generator, device=images.device)).clamp(0, 1)
        logits = model(noisy)
        loss = F.cross_entropy(logits, labels)
        return BatchLoss(loss, logits, {"noisy_ce": loss.item()})


def build(model, spec, dataset, config, device):
    if spec.kind != "snn":
        raise UserError("example-noisy-inputs trains SNNs; pass --kind snn")
    return NoisyInputTraining(config.options["example_noise_std"], config.seed)


class Parameters(Strict):
    example_noise_std: float = Field(default=0.1, gt=0, le=1, allow_inf_nan=False, description="standard deviation of the training noise")


register_recipe(
    RecipeInfo(
        name="example-noisy-inputs",
        summary="cross-entropy on noisy images (example)",
        reference={"paper": "an example defence of the rsc-bench plug-in package"},
        build=build,
        parameters=Parameters,
        family="example clipped SNN",
    )
)
