"""Attacks: the attack registry and its methods, protocols (presets and options), the batch runner, reliability flags."""

from robustbench_snn.attacks.attack import Attack, attack_names, get_attack, register_attack
from robustbench_snn.attacks.flags import FLAGS, run_checks
from robustbench_snn.attacks.protocol import AttackSpec, Protocol, build_protocol, list_presets, parse_eps
from robustbench_snn.attacks.runner import BatchOutcome, attack_batch, decide, effective_members

__all__ = [
    "FLAGS",
    "Attack",
    "AttackSpec",
    "BatchOutcome",
    "Protocol",
    "attack_batch",
    "attack_names",
    "build_protocol",
    "decide",
    "effective_members",
    "get_attack",
    "list_presets",
    "parse_eps",
    "register_attack",
    "run_checks",
]
