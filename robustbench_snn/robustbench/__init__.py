"""RobustBench's API over this benchmark: code written for RobustBench runs with only its imports changed.

    from robustbench_snn.robustbench.data import load_cifar10            # robustbench.data
    from robustbench_snn.robustbench.utils import load_model, clean_accuracy  # robustbench.utils
    from robustbench_snn.robustbench.eval import benchmark               # robustbench.eval
    from robustbench_snn.robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

The functions take RobustBench's arguments in its order (positionally too) and return what its
functions return. Where RobustBench runs AutoAttack, `benchmark` runs our ``reliable`` protocol
(AutoAttack's APGD-DLR among a dozen members built for SNNs and stochastic codings); pass
``attack=`` for another preset. Our own API (`robustbench_snn.benchmark`) stays the richer one: it
returns the full record with flags. What RobustBench has and this benchmark does not (corruptions,
preprocessing, AutoAttack state files, model ensembles) is one clear `UserError`, never a silent
change.
"""

from robustbench_snn.robustbench.data import load_cifar10, load_cifar100, load_fashion_mnist, load_imagenet
from robustbench_snn.robustbench.eval import benchmark
from robustbench_snn.robustbench.utils import clean_accuracy, load_model

__all__ = ["benchmark", "clean_accuracy", "load_cifar10", "load_cifar100", "load_fashion_mnist", "load_imagenet", "load_model"]
