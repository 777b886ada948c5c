"""The fidelity table of the published defences in docs/defences.md: each paper's own number beside our copy under the
paper's evaluation at the paper's eps, our copy under `reliable`, and the verdict (`robustbench_snn.fidelity`).

python results/scripts/fidelity_table.py [--results-dir results]

Rows: `rsc-bench sweep results/sweeps/defences.yaml --results-dir results` (eps 0.1 and the papers' 8/255).
"""

import argparse

from robustbench_snn.attacks import build_protocol
from robustbench_snn.data import dataset_info
from robustbench_snn.fidelity import fidelity, latest_row
from robustbench_snn.registry import list_cards
from robustbench_snn.store import load_rows
from robustbench_snn.tables import percent, results_table


def _reliable_cell(row, ranking_images: int) -> str:
    """A `reliable` row's number, with its images where they are fewer than the ranking's ``ranking_images``."""
    if row is None:
        return "-"
    n = int(row["n_examples"])
    return percent(row["robust_accuracy"]) + ("" if n >= ranking_images else f" (n={n})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--dataset", default="fashion-mnist")
    arguments = parser.parse_args()
    cards = list_cards(arguments.dataset)
    rows = results_table(load_rows(arguments.dataset, arguments.results_dir), cards, dataset=arguments.dataset).to_dict("records")
    threat_eps = dataset_info(arguments.dataset).linf_eps
    ranking_images = build_protocol("reliable").n_examples
    print(
        "| defence | paper (where) | paper's number at its eps | ours under the paper's evaluation at its eps "
        f"| ours under `reliable` at {threat_eps:g} / at the paper's eps | fidelity | what differs |"
    )
    print("|---|---|---|---|---|---|---|")
    for card in (card for card in cards if card.reference.protocol):
        reported, verdict = card.reference.reported, fidelity(card, rows)
        if reported is None:
            print(f"| {card.name} | {card.reference.paper} | not recorded | - | - | not recorded | the paper's numbers could not be read |")
            continue
        at = f"{round(reported.eps * 255, 2):g}/255"
        ours = latest_row(rows, card.name, card.reference.protocol, reported.eps)
        reliable = [latest_row(rows, card.name, "reliable", eps) for eps in (threat_eps, reported.eps)]
        number = "not read" if reported.robust_accuracy is None else percent(reported.robust_accuracy)
        paper = f"{number} at {at} on {reported.dataset}"
        if reported.baseline_robust_accuracy is not None:
            paper += f" (undefended {percent(reported.baseline_robust_accuracy)})"
        cells = [
            card.name,
            reported.source.replace("|", "/"),
            paper,
            f"{percent(ours['robust_accuracy'])} (`{card.reference.protocol}`)" if ours else "-",
            " / ".join(_reliable_cell(row, ranking_images) for row in reliable),
            f"{verdict.verdict}: {verdict.reason}",
            reported.differences.replace("|", "/"),
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
