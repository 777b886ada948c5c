"""A coding: each pixel above a level spikes at every step (straight-through gradient)."""

from pydantic import Field

from robustbench_snn.config import Strict
from robustbench_snn.models import Encoder


class ThresholdParameters(Strict):
    level: float = Field(default=0.5, gt=0, lt=1)


class ThresholdEncoder(Encoder, name="example-threshold"):
    Parameters = ThresholdParameters
    family_name = "threshold SNN"

    def __init__(self, level: float = 0.5) -> None:
        super().__init__()
        self.level = level

    def forward(self, images, timesteps):
        spikes = (images > self.level).to(images.dtype)
        frame = images + (spikes - images).detach()
        return frame.unsqueeze(0).expand(timesteps, *images.shape)
