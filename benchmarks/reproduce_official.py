"""Do the official rows still hold for the current code? For each leaderboard cell (the newest
official row per model, protocol, norm and eps, and each model's newest official certificate),
plan the same evaluation or certificate with the code of this checkout and compare its identity
with the stored row's: equal means a rerun reuses the row (a refactor left it valid); a row whose
protocol has a newer version since is reported as such. With
``--rerun-under S``, rows that took less than S seconds are also recomputed and compared in every
field but timings and provenance; with ``--against FILE``, each official row is compared instead
with the newest row of the same cell in FILE (a store written by a rerun, such as a sweep's).

    python benchmarks/reproduce_official.py [--rerun-under 30] [--against RERUN.jsonl] [--json]
"""

from __future__ import annotations

import argparse
import json

from robustbench_snn import benchmark, load_model
from robustbench_snn.attacks import build_protocol
from robustbench_snn.certify import certificate_identity
from robustbench_snn.evaluation import plan_evaluation
from robustbench_snn.registry import list_cards
from robustbench_snn.store import OFFICIAL_RESULTS_DIR, load_rows
from robustbench_snn.tables import newest_official_certificates, results_table

# What may differ between two runs of one configuration: wall times, and where, when and by which code it ran.
NOT_COMPARED = {
    "runtime_s",
    "member_seconds",
    "draws_per_second",
    "timestamp",
    "ranks",
    "gather_s",
    "git_commit",
    "versions",
    "reused",
    "store",
}
# The identity fields: what a rerun under a newer identity scheme changes on purpose.
IDENTITY = {"config_hash", "code_version", "components"}


def stored_rows() -> list[dict]:
    return [json.loads(line) for path in sorted(OFFICIAL_RESULTS_DIR.glob("*.jsonl")) for line in path.open()]


def official_rows() -> list[dict]:
    """The stored rows behind the leaderboard's cells (and their eps sweeps), as stored."""
    cells = results_table(load_rows(directory=OFFICIAL_RESULTS_DIR), list_cards(), select="official")
    wanted = {(cell.model, cell.protocol, cell.norm, round(cell.eps, 12), cell.timestamp) for cell in cells.itertuples()}
    return [
        row
        for row in stored_rows()
        if row.get("protocol") != "certify"
        and (row["model"], row["protocol"], row["norm"], round(row["eps"], 12), row["timestamp"]) in wanted
    ]


def official_certificates() -> list[dict]:
    """The stored certificate rows the leaderboard shows: each model's newest official one."""
    return list(newest_official_certificates(stored_rows(), {card.name: card for card in list_cards()}).values())


def plan_of(row: dict):
    model = load_model(row["model"], seed=row["seed"])
    return model, dict(attack=row["protocol"], n_examples=row["n_examples"], seed=row["seed"], batch_size=row["batch_size"])


def check(row: dict, rerun_under: float | None) -> dict:
    model, settings = plan_of(row)
    plan = plan_evaluation(
        model,
        dataset=row["dataset"],
        overrides={"eps": row["eps"]},
        data_dir=None,
        device="cpu",
        compile_lif=None,
        model_name=None,
        **settings,
    )
    current = build_protocol(row["protocol"]).version
    found = {"model": row["model"], "protocol": row["protocol"], **setting_and_version(row)}
    # rows made before identities were component versions (830f29f) carry a hash of the code's bytes
    found["component_identity"] = "components" in row
    if found["version"] != current:
        return {**found, "identity": f"protocol now version {current}", "numbers": "-"}
    found["identity"] = "same" if plan.config_hash == row["config_hash"] else f"changed ({row['config_hash']} -> {plan.config_hash})"
    found["numbers"] = "-"
    if rerun_under is not None and row["runtime_s"] < rerun_under:
        again = benchmark(model, dataset=row["dataset"], overrides={"eps": row["eps"]}, **settings).as_dict()
        differing = sorted(key for key in again if key not in NOT_COMPARED and key in row and again[key] != row[key])
        found["numbers"] = "equal" if not differing else "differ: " + ", ".join(differing)
    return found


def check_certificate(row: dict) -> dict:
    found = {"model": row["model"], "protocol": "certify", **setting_and_version(row), "numbers": "-"}
    found["component_identity"] = "components" in row
    if "config_hash" not in row:  # certify version 1 stored no identity
        return {**found, "identity": "none stored"}
    planned = certificate_identity(
        load_model(row["model"], seed=row["seed"]),
        sigma=row["sigma"],
        n0=row["n0"],
        draws=row["n"],
        alpha=row["alpha"],
        n_examples=row["n_examples"],
        batch_size=row["batch_size"],
        seed=row["seed"],
    )
    found["identity"] = "same" if planned == row["config_hash"] else f"changed ({row['config_hash']} -> {planned})"
    return found


def cell_key(row: dict) -> tuple:
    if row.get("protocol") == "certify":
        return row["model"], "certify", row["sigma"], row["n0"], row["n"], row["alpha"], row["seed"], row["n_examples"]
    return row["model"], row["protocol"], row["norm"], round(row["eps"], 12), row["seed"], row["n_examples"]


def _same(stored: object, again: object) -> bool:
    """Whether a rerun's value equals the stored one; fields the stored row's code did not write yet
    (in a mapping, keys it lacks) are not compared."""
    if isinstance(stored, dict) and isinstance(again, dict):
        return all(_same(value, again.get(key)) for key, value in stored.items())
    if isinstance(stored, list) and isinstance(again, list):
        return len(stored) == len(again) and all(map(_same, stored, again))
    return stored == again


def setting_and_version(row: dict) -> dict:
    if row.get("protocol") == "certify":
        return {"sigma": row["sigma"], "version": row.get("components", {}).get("certify", 1)}
    return {"eps": row["eps"], "version": row["params"].get("version", 1)}


def compare_with(rows: list[dict], path: str) -> list[dict]:
    """Each official row against the newest row of its cell in ``path``, field by field."""
    newest = {}
    for line in open(path):
        row = json.loads(line)
        newest[cell_key(row)] = row
    found = []
    for row in rows:
        again = newest.get(cell_key(row))
        if again is None or again["timestamp"] <= row["timestamp"]:
            continue
        differing = sorted(key for key in set(row) - NOT_COMPARED - IDENTITY if not _same(row[key], again.get(key)))
        entry = {"model": row["model"], "protocol": row["protocol"], **setting_and_version(row)}
        entry["identity"] = "same" if again["config_hash"] == row.get("config_hash") else "new"
        entry["numbers"] = "equal" if not differing else "differ: " + ", ".join(differing)
        found.append(entry)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rerun-under", type=float, help="Also recompute rows that took less than this many seconds.")
    parser.add_argument("--against", help="Compare with the rows of this store file instead of planning or rerunning.")
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    rows, certificates = official_rows(), official_certificates()
    if arguments.against:
        found = compare_with(rows + certificates, arguments.against)
    else:
        found = [check(row, arguments.rerun_under) for row in rows] + [check_certificate(row) for row in certificates]
    if arguments.json:
        print(json.dumps(found, indent=1))
        return
    print("| model | protocol | eps or sigma | version | identity | numbers |\n|---|---|---|---|---|---|")
    for entry in found:
        setting = f"{entry['eps']:.4g}" if "eps" in entry else f"sigma {entry['sigma'] or 'own'}"
        cells = [entry["model"], entry["protocol"], setting, entry["version"], entry["identity"], entry["numbers"]]
        print("| " + " | ".join(map(str, cells)) + " |")


if __name__ == "__main__":
    main()
