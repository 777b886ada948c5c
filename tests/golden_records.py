"""The golden records: a small fixed set of evaluations whose full records are pinned in
``tests/golden/records.json``, across codings, gradient modes, estimators, attacks and energy.

A result is reused while the versions of the code that computed it are unchanged
(`robustbench_snn.provenance.components`). `test_golden_records` recomputes every case: a number
that changed while those versions did not is a missing version bump. After a deliberate change
(with its bump), regenerate the file and commit it with the change:

    python tests/golden_records.py
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from robustbench_snn import benchmark, load_model
from robustbench_snn.attacks import Protocol
from robustbench_snn.attacks.protocol import AttackSpec

GOLDEN = Path(__file__).parent / "golden" / "records.json"

# The record fields that hold numbers (timings, paths, dates and package versions are left out).
PINNED = (
    "clean_accuracy",
    "clean_accuracy_one_draw",
    "robust_accuracy",
    "attacks",
    "flags",
    "flag_details",
    "member_kills",
    "survivors",
    "skipped_members",
    "member_seeds",
    "energy",
    "config_hash",
    "components",
)


def _members(*fields: dict) -> list[AttackSpec]:
    return [AttackSpec(eps=0.1, **member) for member in fields]


CASES: dict[str, dict] = {
    "ann-pgd": {"model": "fmnist_ann", "n": 16, "attack": "pgd"},
    "direct-gradient-modes": {
        "model": "fmnist_snn_direct",
        "n": 8,
        "members": [
            {"attack": "pgd", "steps": 3, "grad": "bptt", "surrogate": "sigmoid"},
            {"attack": "pgd", "steps": 3, "grad": "bptr"},
            {"attack": "pgd", "steps": 3, "grad": "rga"},
            {"attack": "pgd", "steps": 3, "grad": "act"},
            {"attack": "pgd", "steps": 3, "grad": "hart"},
            {"attack": "apgd-dlr", "steps": 3},
        ],
    },
    "poisson-estimators": {
        "model": "fmnist_snn_poisson",
        "n": 8,
        "members": [
            {"attack": "pgd", "steps": 2, "eot": 2},
            {"attack": "pgd", "steps": 2, "eot": 2, "estimator": "relaxed", "temperature": 0.5},
            {"attack": "pgd", "steps": 2, "eot": 2, "estimator": "score-function"},
            {"attack": "pgd", "steps": 3, "restarts": 2, "loss": "cw", "source": "expectation"},
        ],
    },
    "rsc-attacks": {
        "model": "fmnist_rsc1_s0.2",
        "n": 8,
        "members": [
            {"attack": "pgd", "steps": 2, "eot": 2},
            {"attack": "mi-di-fgsm", "steps": 3, "source": "twin"},
            {"attack": "square", "queries": 20, "eot": 1},
        ],
    },
    "rsc2-clean-energy": {"model": "fmnist_rsc2_s0.1", "n": 16, "attack": "none"},
}


def compute(case: dict) -> dict:
    """The pinned fields of one case's record, computed now (one thread, so sums run in one order)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = load_model(case["model"], seed=0)
        attack = case.get("attack") or Protocol(name="golden", members=_members(*case["members"]), eval_draws=2)
        record = benchmark(model, dataset="fashion-mnist", attack=attack, n_examples=case["n"], seed=0, batch_size=8, compile_lif=False)
    finally:
        torch.set_num_threads(threads)
    as_dict = json.loads(json.dumps(record.__dict__, default=str))
    return {field: as_dict[field] for field in PINNED}


def main() -> None:
    records = {name: compute(case) for name, case in CASES.items()}
    GOLDEN.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({len(records)} records)")


if __name__ == "__main__":
    main()
