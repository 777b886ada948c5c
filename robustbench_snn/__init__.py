"""robustbench-snn: a benchmark for the adversarial robustness of spiking neural networks."""

from robustbench_snn.evaluation import benchmark
from robustbench_snn.registry import list_cards, load_model

__all__ = ["benchmark", "list_cards", "load_model"]
__version__ = "0.1.0"
