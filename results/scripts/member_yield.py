"""What each member of `reliable` earns for its cost across the zoo: the table in docs/attacks.md
that a schedule of the protocol must answer to (issue 40, "a worst case that pays for itself").

python results/scripts/member_yield.py [--results-dir results] [--version 7]

From the newest official row of the version on every model: per model, its robust accuracy and
the same with the kills that did not hold on a second decision given back; per member (by label,
with its gradient mode and source), the models it ran on, the samples it fooled, how many of those
kills hold when decided again on fresh draws, its seconds, and kills (holding) per 100 seconds;
members sorted by that yield. A member whose kills never hold is the decision rule's noise, not an attack.
"""

import argparse
import json
import re
from pathlib import Path


def newest_rows(path: Path, version: int) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line) if line.strip() else {}
        official = row.get("protocol") == "reliable" and row.get("preset_unmodified") and row.get("seed") == 0
        if official and (row.get("params") or {}).get("version") == version and row.get("member_kills_holding") is not None:
            if row["timestamp"] >= found.get(row["model"], {}).get("timestamp", ""):
                found[row["model"]] = row
    return found


def family(label: str, searched: set[str]) -> str:
    """A member's label, one line across models: a searched member's without the value the search chose."""
    if label not in searched:
        return label
    return re.sub(r"@[0-9.]+", "", re.sub(r"-atan@[0-9.]+", "", label)) + " (searched)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--version", type=int, default=7)
    arguments = parser.parse_args()
    rows = newest_rows(Path(arguments.results_dir) / f"{arguments.dataset}.jsonl", arguments.version)
    totals: dict[str, dict] = {}
    for row in rows.values():
        searched = {search["member"] for search in row.get("searches", [])}
        for label, kills in row["member_kills"].items():
            entry = totals.setdefault(family(label, searched), {"models": 0, "kills": 0, "holding": 0, "seconds": 0.0})
            entry["models"] += 1
            entry["kills"] += kills
            entry["holding"] += row["member_kills_holding"].get(label, 0)
            entry["seconds"] += row["member_seconds"].get(label, 0.0)
    print(f"`reliable` v{arguments.version} on {len(rows)} models ({', '.join(sorted(rows))})")
    print()
    print("| model | robust | re-decided | kills | of which hold |")
    print("|---|---|---|---|---|")
    for model, row in sorted(rows.items(), key=lambda item: -item[1]["robust_accuracy"]):
        kills, holding = sum(row["member_kills"].values()), sum(row["member_kills_holding"].values())
        redecided = row["robust_accuracy"] + (kills - holding) / row["n_examples"]
        print(f"| {model} | {100 * row['robust_accuracy']:.1f} | {100 * redecided:.1f} | {kills} | {holding} |")
    print()
    print("| member | models | kills | of which hold | seconds | holding kills per 100 s |")
    print("|---|---|---|---|---|---|")
    for label, entry in sorted(totals.items(), key=lambda item: -item[1]["holding"] / max(item[1]["seconds"], 1e-9)):
        rate = 100 * entry["holding"] / entry["seconds"] if entry["seconds"] else 0.0
        print(f"| {label} | {entry['models']} | {entry['kills']} | {entry['holding']} | {entry['seconds']:.0f} | {rate:.2f} |")


if __name__ == "__main__":
    main()
