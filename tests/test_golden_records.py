"""A change that alters a number must bump a version: the golden records, recomputed."""

from __future__ import annotations

import json
import math

import pytest
from golden_records import CASES, GOLDEN, compute

PINNED = json.loads(GOLDEN.read_text())


def _differences(expected: object, found: object, where: str = "") -> list[str]:
    if isinstance(expected, dict) and isinstance(found, dict):
        keys = sorted(set(expected) | set(found))
        return [line for key in keys for line in _differences(expected.get(key), found.get(key), f"{where}.{key}")]
    if isinstance(expected, list) and isinstance(found, list) and len(expected) == len(found):
        return [line for index, pair in enumerate(zip(expected, found)) for line in _differences(*pair, f"{where}[{index}]")]
    if isinstance(expected, float) and isinstance(found, float) and math.isclose(expected, found, rel_tol=1e-9, abs_tol=1e-12):
        return []
    return [] if expected == found else [f"{where}: pinned {expected!r}, now {found!r}"]


def test_every_case_is_pinned():
    assert set(PINNED) == set(CASES), "regenerate with `python tests/golden_records.py`"


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_record_is_unchanged_unless_a_version_was_bumped(name):
    found = compute(CASES[name])
    pinned = PINNED[name]
    if found["components"] != pinned["components"]:
        pytest.fail(
            f"{name}: component versions changed ({_differences(pinned['components'], found['components'])}); "
            "if on purpose, regenerate the golden records with `python tests/golden_records.py` and commit them with the bump"
        )
    changed = _differences({k: v for k, v in pinned.items() if k != "config_hash"}, {k: v for k, v in found.items() if k != "config_hash"})
    assert not changed, (
        f"{name}: numbers changed while no component version did; bump the version of what you changed "
        f"(provenance.COMPONENT_VERSIONS, the attack's or encoder's `version`):\n" + "\n".join(changed[:20])
    )
    assert found["config_hash"] == pinned["config_hash"], "same versions, same configuration: the stored row's identity must not move"
