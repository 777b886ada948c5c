"""The low-latency Poisson SNN (Sharmin et al., ECCV 2020): few steps, a strong leak (`robustbench_snn.training.low_latency`)."""

from __future__ import annotations

from robustbench_snn.defences.declarations import Deferred, RecipeInfo

RECIPE = RecipeInfo(
    name="low-latency",
    summary="cross-entropy for Poisson-coded SNNs with few steps and a strong leak (Sharmin et al. 2020)",
    reference={
        "paper": "Sharmin et al., Inherent Adversarial Robustness of Deep Spiking Neural Networks: Effects of Discrete "
        "Input Encoding and Non-Linear Activations, ECCV 2020",
        "url": "https://arxiv.org/abs/2003.10399",
        "protocol": "paper-sharmin2020",
    },
    build=Deferred("robustbench_snn.training.low_latency", "build"),
    family="low-latency leaky SNN",
)
