"""RobustBench's ``robustbench.model_zoo``: the dataset and threat-model enums (`enums`)."""
