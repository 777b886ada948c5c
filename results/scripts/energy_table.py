"""The table of energy in docs/energy.md on the zoo, from the official rows of one protocol at the threat model's eps.

python results/scripts/energy_table.py [--protocol reliable] [--results-dir results]
"""

import argparse

from robustbench_snn.registry import list_cards
from robustbench_snn.store import load_rows
from robustbench_snn.tables import microjoules, percent, results_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default="reliable")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--eps", type=float, default=0.1)
    arguments = parser.parse_args()
    table = results_table(load_rows("fashion-mnist", arguments.results_dir), list_cards(), protocol=arguments.protocol, eps=arguments.eps)
    table = table.dropna(subset=["energy_pj"]).sort_values("energy_pj")
    print("| model | family | clean | robust | firing % (clean / attack) | SynOps | MACs | energy µJ (clean) | under attack | change |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in table.to_dict("records"):
        cells = [
            row["model"],
            row["family"],
            percent(row["clean_accuracy"]),
            percent(row["robust_accuracy"]),
            f"{percent(row['firing_rate'])} / {percent(row['firing_rate_adv'])}" if row["firing_rate"] == row["firing_rate"] else "-",
            f"{row['synops']:,.0f}",
            f"{row['macs']:,.0f}",
            microjoules(row["energy_pj"]),
            microjoules(row["energy_pj_adv"]),
            f"{100 * (row['energy_pj_adv'] / row['energy_pj'] - 1):+.1f}%",
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
