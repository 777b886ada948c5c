"""The README's table of `reliable` version 1 against version 2 on the zoo, from the stored rows.

python results/scripts/compare_reliable.py results/fashion-mnist.jsonl
"""

import json
import sys

# Labels of the members version 2 added: the coding's transfers from its expectation, and HART.
ADDED_MEMBERS = ("<-expectation", "hart")


def main(path: str) -> None:
    rows = [json.loads(line) for line in open(path) if line.strip()]
    by_version: dict[int, dict[str, dict]] = {1: {}, 2: {}}
    for row in rows:
        if row["protocol"] == "reliable" and row.get("n_examples") == 1000:
            by_version[row["params"].get("version", 1)][row["model"]] = row
    old, new = by_version[1], by_version[2]
    print(
        "| model | clean (all 4 draws / 1 draw) | `reliable` v1 | v2 | points lower | kills of v2's new members "
        "| flags (v2) | run time v2 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for model in sorted(new, key=lambda name: -new[name]["robust_accuracy"]):
        current, before = new[model], old[model]
        added = {label: kills for label, kills in current["member_kills"].items() if kills and any(part in label for part in ADDED_MEMBERS)}
        cells = [
            model,
            f"{100 * current['clean_accuracy']:.1f} / {100 * current['clean_accuracy_one_draw']:.1f}",
            f"{100 * before['robust_accuracy']:.1f}",
            f"{100 * current['robust_accuracy']:.1f}",
            f"{100 * (before['robust_accuracy'] - current['robust_accuracy']):+.1f}",
            ", ".join(f"{label} {kills}" for label, kills in added.items()) or "-",
            ", ".join(current["flags"]) or "-",
            f"{current['runtime_s']:.0f} s",
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
