"""The table of the zoo's audits in docs/attacks.md, from the stored audits (the newest of each model).

python results/scripts/audit_table.py [--results-dir results]

For each model: `reliable` on the audit's images, the worst case over every audited attack and
`reliable`, the survivors of `reliable` that an attack alone broke against the re-seeded control,
the strongest single attack and the attacks that broke survivors.
"""

import argparse
import json
from pathlib import Path


def newest_audits(path: Path) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            audit = json.loads(line)
            if audit.get("timestamp", "") >= found.get(audit["model"], {}).get("timestamp", ""):
                found[audit["model"]] = audit
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--dataset", default="fashion-mnist")
    arguments = parser.parse_args()
    audits = newest_audits(Path(arguments.results_dir) / "audits" / f"{arguments.dataset}.jsonl")
    print(
        "| model | version | images | `reliable` | worst case over all attacks and `reliable` | survivors broken by an attack alone "
        "/ by the re-seeded control | strongest attack alone | attacks that broke survivors | verdict |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for model, audit in sorted(audits.items(), key=lambda item: -item[1]["protocol_accuracy"]):
        strongest = min(audit["entries"], key=lambda entry: entry["robust_accuracy"])
        breakers = [
            f"{entry['attack']} {entry['fooled_protocol_survivors']}" for entry in audit["entries"] if entry["fooled_protocol_survivors"]
        ]
        cells = [
            model,
            str(audit.get("protocol_version", "?")),
            str(audit["n_examples"]),
            f"{100 * audit['protocol_accuracy']:.1f}%",
            f"{100 * audit['worst_case_accuracy']:.1f}%",
            f"{audit['broken_survivors']} of {audit['protocol_survivors']} / {audit['control_kills']}",
            f"{strongest['attack']} {100 * strongest['robust_accuracy']:.1f}%",
            ", ".join(breakers) or "-",
            "flagged" if audit["flagged"] else "holds",
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
