"""The tables of `reliable` in docs/attacks.md against its previous version on the zoo, from the stored rows.

python results/scripts/compare_reliable.py results/fashion-mnist.jsonl [--versions 2 3]

A member is "new" when the earlier version's row of the same model did not run it (with
``--added``, and its label contains one of the given parts); the
convergence column gives, for the cheap members whose restarts double, the samples still robust
after each doubling (summed over the run's batches).
"""

import argparse
import json

from robustbench_snn.tables import redecided_accuracy


def newest_rows(path: str, version: int) -> dict[str, dict]:
    """The newest official-size `reliable` row of each model at ``version``."""
    found: dict[str, dict] = {}
    for line in open(path):
        if not line.strip():
            continue
        row = json.loads(line)
        if row["protocol"] == "reliable" and row.get("n_examples") == 1000 and row.get("seed") == 0:
            if row["params"].get("version", 1) == version and row.get("timestamp", "") >= found.get(row["model"], {}).get("timestamp", ""):
                found[row["model"]] = row
    return found


def convergence_cell(row: dict) -> str:
    curves = row.get("flag_details", {}).get("convergence", {})
    return "; ".join(f"{label}: {' > '.join(map(str, curve['robust']))}" for label, curve in curves.items()) or "-"


def redecided_cell(row: dict | None) -> str:
    """The row's robust accuracy with the kills that did not hold on a second decision given back."""
    if not row:
        return "-"
    redecided = redecided_accuracy(row["robust_accuracy"], row["n_examples"], row["member_kills"], row.get("member_kills_holding"))
    return "-" if redecided is None else f"{100 * redecided:.1f}"


def holding_cell(row: dict) -> str:
    if row.get("member_kills_holding") is None:
        return "-"
    return f"{sum(row['member_kills_holding'].values())} of {sum(row['member_kills'].values())}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--versions", nargs=2, type=int, default=(2, 3), metavar=("OLD", "NEW"))
    parser.add_argument(
        "--added",
        nargs="*",
        default=(),
        help="Count as new only members whose label contains one of these (for rows made before labels were unified).",
    )
    arguments = parser.parse_args()
    old_version, new_version = arguments.versions
    old, new = newest_rows(arguments.path, old_version), newest_rows(arguments.path, new_version)
    old_label, new_label = f"v{old_version}", f"v{new_version}"
    print(
        f"| model | clean (the protocol's decision / 1 draw) | `reliable` {old_label} | {old_label} re-decided | {new_label} "
        "| points lower "
        f"| kills that hold ({new_label}) | kills of {new_label}'s new members | robust as restarts double | flags ({new_label}) "
        f"| run time {old_label} / {new_label} |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for model in sorted(new, key=lambda name: -new[name]["robust_accuracy"]):
        current, before = new[model], old.get(model)
        earlier = set(before["attacks"]) if before else set()
        added = {
            label: kills
            for label, kills in current["member_kills"].items()
            if kills and label not in earlier and (not arguments.added or any(part in label for part in arguments.added))
        }
        cells = [
            model,
            f"{100 * current['clean_accuracy']:.1f} / {100 * current['clean_accuracy_one_draw']:.1f}",
            f"{100 * before['robust_accuracy']:.1f}" if before else "-",
            redecided_cell(before),
            f"{100 * current['robust_accuracy']:.1f}",
            f"{100 * (before['robust_accuracy'] - current['robust_accuracy']):+.1f}" if before else "-",
            holding_cell(current),
            ", ".join(f"{label} {kills}" for label, kills in added.items()) or "-",
            convergence_cell(current),
            ", ".join(current["flags"]) or "-",
            (f"{before['runtime_s']:.0f} s / " if before else "- / ") + f"{current['runtime_s']:.0f} s",
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
