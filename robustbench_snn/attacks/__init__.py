"""Attacks: protocols (presets and options), attack methods, the batch runner, reliability flags."""

from robustbench_snn.attacks.flags import FLAGS, run_checks
from robustbench_snn.attacks.protocol import ATTACKS, AttackSpec, Protocol, build_protocol, list_presets, parse_eps
from robustbench_snn.attacks.runner import BatchOutcome, attack_batch, decide, effective_members

__all__ = [
    "ATTACKS", "FLAGS", "AttackSpec", "BatchOutcome", "Protocol", "attack_batch", "build_protocol", "decide",
    "effective_members", "list_presets", "parse_eps", "run_checks",
]
