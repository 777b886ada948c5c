"""Provenance of a stored number: the code, the versions and the commit that made it, and when.

Every stored row (an evaluation, a certificate) carries `stamp()`; a result is reused only
while the versions of the components that computed it (`components`) are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import metadata

from robustbench_snn.shipped import CHECKOUT, in_checkout

# The versions of the parts that every evaluation uses, by what they compute. Bump one whenever a
# change alters any number it makes (tests/test_golden_records.py fails when a number changes and
# no version does); never for a docstring, a rename or a move. Attacks and encoders declare their
# own (`Attack.version`, `Encoder.version`).
COMPONENT_VERSIONS: dict[str, int] = {
    "evaluation": 1,  # planning, batching, seeds, the decision rule, restarts, checks and flags
    "models": 1,  # the forward pass: architectures, LIF neurons (compiled too), classifiers, user-model adapters
    "gradients": 1,  # the SNN gradient modes, surrogates, BPDA and the sampling estimators
    "energy": 1,  # spike, SynOps and MAC counting and the energy constants
    "data": 1,  # dataset loading: the test split's images, labels and order
}


def components(
    attacks: Mapping[str, int] | None = None,
    encoders: Mapping[str, int] | None = None,
    columns: Mapping[str, int] | None = None,
    estimators: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """The versions a result depends on: the shared parts', and those of each attack, encoder,
    registered result column (`robustbench_snn.columns`) and sampling estimator other than its
    coding's default (`robustbench_snn.models.estimators`) it used."""
    found = dict(COMPONENT_VERSIONS)
    kinds = {"attack": attacks, "encoder": encoders, "column": columns, "estimator": estimators}
    for kind, versions_of_kind in kinds.items():
        found.update({f"{kind}:{name}": version for name, version in sorted((versions_of_kind or {}).items())})
    return found


def code_version(versions_used: Mapping[str, int]) -> str:
    """A short hash of `components`, the code identity a stored row carries: a result is reused only
    while it is unchanged, and a refactor that changes no number leaves it as it was."""
    return hashlib.sha256(json.dumps(dict(versions_used), sort_keys=True).encode()).hexdigest()[:16]


def versions() -> dict[str, str]:
    """Versions that a result depends on."""
    found = {"python": platform.python_version()}
    for package in ("robustbench-snn", "torch", "spikingjelly", "pyautoattack"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "unknown"
    return found


def git_commit() -> str:
    """The checkout's commit, or "unknown" for an installed package (whatever repository it sits in)."""
    if not in_checkout():
        return "unknown"
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=CHECKOUT, capture_output=True, text=True, timeout=10)
    except OSError:
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def stamp(versions_used: Mapping[str, int] | None = None) -> dict:
    """The provenance fields of a stored row: the component versions it used (`components`) and
    their code version, package versions, commit, UTC time."""
    versions_used = dict(versions_used or components())
    return {
        "components": versions_used,
        "code_version": code_version(versions_used),
        "versions": versions(),
        "git_commit": git_commit(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
