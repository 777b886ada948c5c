"""An attack: a random corner of the eps-ball (black-box, no gradients)."""

import torch

from robustbench_snn.attacks import Attack, register_attack


@register_attack
class RandomCorner(Attack):
    name = "example-corner"
    description = "a random corner of the eps-ball (the example plug-in's attack)"
    white_box = False
    uses_gradients = False
    shows_steps = False

    def perturb(self, model, spec, images, labels, seed, draws):
        generator = torch.Generator().manual_seed(seed)
        signs = torch.randint(0, 2, images.shape, generator=generator).to(images) * 2 - 1
        return (images + spec.eps * signs).clamp(0, 1)
