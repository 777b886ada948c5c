"""The table of the published defences in docs/defences.md: what each paper's own evaluation reports on our
reproduction, beside `reliable` and the audit, from the official rows and stored audits.

python results/scripts/defences_table.py [--results-dir results]

A defence is a model whose card names the preset of its paper's evaluation (``reference.protocol``).
"Overstated by" is the paper's protocol minus `reliable`, in points, on the same 1,000 test images, shown
for a copy that reproduces its paper (`robustbench_snn.fidelity`; otherwise the verdict);
the worst audited attack is the lowest robust accuracy of any single attack the audit ran, on its
own (fewer) images.
"""

import argparse

from robustbench_snn.fidelity import REPRODUCED, fidelity
from robustbench_snn.registry import list_cards
from robustbench_snn.store import load_audits, load_rows
from robustbench_snn.tables import microjoules, percent, results_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--eps", type=float, default=0.1)
    arguments = parser.parse_args()
    cards = list_cards(arguments.dataset)
    every_eps = results_table(load_rows(arguments.dataset, arguments.results_dir), cards, dataset=arguments.dataset).to_dict("records")
    cells = {(row["model"], row["protocol"]): row for row in every_eps if abs(row["eps"] - arguments.eps) < 1e-9}
    audits = {audit["model"]: audit for audit in load_audits(arguments.dataset, arguments.results_dir) if audit["protocol"] == "reliable"}
    print(
        "| defence | paper | clean % (decision rule) | paper's protocol % | `reliable` % | worst audited attack % | audit "
        "| overstated by | energy µJ |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for card in (card for card in cards if card.reference.protocol):
        paper, reliable = cells.get((card.name, card.reference.protocol)), cells.get((card.name, "reliable"))
        audit = audits.get(card.name)
        worst = min(audit["entries"], key=lambda entry: entry["robust_accuracy"]) if audit else None
        verdict = fidelity(card, every_eps)
        faithful = verdict is not None and verdict.verdict == REPRODUCED
        cells_of_row = [
            card.name,
            card.reference.paper.split(",")[0] + ", " + card.reference.paper.rsplit(",", 1)[-1].strip(),
            percent(reliable["clean_accuracy"]) if reliable else "-",
            f"{percent(paper['robust_accuracy'])} (`{card.reference.protocol}`)" if paper else "-",
            percent(reliable["robust_accuracy"]) if reliable else "-",
            f"{worst['attack']} {percent(worst['robust_accuracy'])} (n={audit['n_examples']})" if worst else "-",
            ("flagged" if audit["flagged"] else "holds") if audit else "-",
            (
                f"{100 * (paper['robust_accuracy'] - reliable['robust_accuracy']):+.1f} points"
                if faithful
                else f"- (copy {verdict.verdict if verdict else 'not recorded'})"
            )
            if paper and reliable
            else "-",
            microjoules(reliable["energy_pj"]) if reliable else "-",
        ]
        print("| " + " | ".join(cell.replace("|", "\\|") for cell in cells_of_row) + " |")


if __name__ == "__main__":
    main()
