"""``rsc-bench results``, ``plot-tradeoff`` and ``plot-eps``: the stored rows as tables and figures."""

from __future__ import annotations

from pathlib import Path

import click

from robustbench_snn.cli import options
from robustbench_snn.cli.app import main
from robustbench_snn.errors import NoResultsError


def _carried(rows, results_dir) -> dict:
    """The carried kills (`carried_kills`) of ``rows`` at each known dataset's threat model, by model
    (rows of a dataset no installed package declares have no threat model to carry them at)."""
    from robustbench_snn.data import DATASETS
    from robustbench_snn.store import load_outside
    from robustbench_snn.tables import carried_kills

    stored = rows.to_dict("records") if not rows.empty else []
    carried = {}
    for dataset in {row.get("dataset") for row in stored} & set(DATASETS):
        carried |= carried_kills(stored, dataset, DATASETS[dataset].linf_eps, load_outside(dataset, results_dir))
    return carried


def _table(dataset, protocol, eps, results_dir, select="yours", models=()):
    from robustbench_snn.registry import list_cards
    from robustbench_snn.store import load_rows, reading_stores
    from robustbench_snn.tables import results_table, with_carried_kills

    rows = load_rows(dataset, results_dir, with_user_store=True)
    table = results_table(rows, list_cards(), dataset=dataset, protocol=protocol, eps=eps, select=select)
    table = with_carried_kills(table, _carried(rows, results_dir))
    if models:
        table = table[table["model"].isin(models)]
    if table.empty:
        looked = " and ".join(str(folder) for folder in reading_stores(results_dir, with_user_store=True))
        kind = "results" if select == "all" else "official results or results of yours"
        raise NoResultsError(f"no stored {kind} match these filters in {looked}; run `rsc-bench evaluate` first")
    return table


@main.command()
@options.table_filters
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@options.as_json
@click.option(
    "--all", "every_row", is_flag=True, help="Every stored configuration (quick runs, overrides, other seeds), marked official or not."
)
@click.option("--model", "models", multiple=True, help="Only this model's rows (repeatable).")
def results(dataset, protocol, eps, results_dir, output, as_json, every_row, models):
    """The stored results as a tidy table: one row per model x protocol x eps, with QTE.

    By default the official store's official rows (the unmodified preset, on at least its number
    of images, with the standard seed; the newest such run) and every row of yours (the folder
    `rsc-bench evaluate` stores in: --results-dir, else $RSC_BENCH_RESULTS, else your data
    folder), yours first and marked `yours` in the store column; --results-dir DIR reads only
    DIR; --all lists every configuration. robust_low/high is the 95% Clopper-Pearson interval
    from n; carried is the lower number the leaderboard ranks by where an earlier version of
    `reliable` or an outside attack broke samples this row counts robust, on the same images
    (`robust_accuracy_carried` in --json and csv); QTE is the area under robust accuracy against
    eps over the official sweep (A(0) = clean accuracy), qte_normalised the same divided by
    the sweep's width. clean counts a stochastic model correct only if right on every decision
    draw; clean_1draw is the accuracy of one draw. firing is the spiking layers' firing rate (%)
    and energy_uJ the estimated energy per image (SynOps x 0.9 pJ + MACs x 4.6 pJ, an estimate,
    not a hardware measurement) on clean inputs, energy_adv_uJ on the protocol's final
    adversarial inputs (`rsc-bench energy` breaks them down by layer). Result columns that
    installed packages register (`robustbench_snn.columns`) follow, under their titles. Exits 3
    when no stored row matches.
    """
    from robustbench_snn.columns import COLUMNS
    from robustbench_snn.tables import interval, microjoules, percent, registered_columns

    table = _table(dataset, protocol, eps, results_dir, select="all" if every_row else "yours", models=models)
    if as_json or output == "json":
        click.echo(table.to_json(orient="records", indent=2))
    elif output == "csv":
        click.echo(table.to_csv(index=False), nl=False)
    else:
        shown = table.assign(
            clean=table["clean_accuracy"].map(percent),
            clean_1draw=table["clean_accuracy_one_draw"].map(percent),
            robust=table["robust_accuracy"].map(percent),
            carried=table["robust_accuracy_carried"].map(percent),
            ci95=[interval(low, high) for low, high in zip(table["robust_low"], table["robust_high"])],
            qte_norm=table["qte_normalised"].map(percent),
            firing=table["firing_rate"].map(percent),
            energy_uJ=table["energy_pj"].map(microjoules),
            energy_adv_uJ=table["energy_pj_adv"].map(microjoules),
            flags=[", ".join(flags) or "-" for flags in table["flags"]],
            **{COLUMNS[name].title: table[name].map(COLUMNS[name].cell) for name in registered_columns(table)},
        )
        columns = [
            "store",
            "model",
            "family",
            "protocol",
            "norm",
            "eps",
            "grad",
            "eot",
            "n_examples",
            "clean",
            "clean_1draw",
            "robust",
            *(["carried"] if table["robust_accuracy_carried"].notna().any() else []),
            "ci95",
            "qte_norm",
            "firing",
            "energy_uJ",
            "energy_adv_uJ",
            *(COLUMNS[name].title for name in registered_columns(table)),
            "flags",
        ] + (["official"] if every_row else [])
        click.echo(shown[columns].to_string(index=False, float_format=lambda value: f"{value:.4g}", na_rep="-"))


def _report_figure(path: Path, models: int, as_json: bool) -> None:
    if as_json:
        options.print_json({"path": str(path), "models": models})
    else:
        click.echo(f"wrote {path} ({models} models)")


def _figure_out(out: str | None, kind: str, dataset: str, protocol: str) -> Path:
    """The figure's file: ``out``, else ``<kind>-<dataset>-<protocol>.png`` in the current folder."""
    from robustbench_snn.store import ensure_writable

    path = Path(out) if out is not None else Path(f"{kind}-{dataset}-{protocol}.png")
    ensure_writable(path.resolve().parent)
    return path


FIGURE_OUT = click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Figure file (.png, .svg or .pdf) [default: KIND-DATASET-PROTOCOL.png in the current folder].",
)
QUICK_RUNS = click.option(
    "--quick-runs",
    is_flag=True,
    help="Draw your quick runs and overrides too [default: official rows and your full runs of the unmodified preset].",
)


def _selection(quick_runs: bool) -> str:
    """Which rows a figure draws: the official rows of every store (yours that meet the rule too), or every row of yours."""
    return "yours" if quick_runs else "official"


@main.command("plot-tradeoff")
@options.table_filters
@FIGURE_OUT
@QUICK_RUNS
@options.as_json
def plot_tradeoff_command(dataset, protocol, eps, results_dir, out, quick_runs, as_json):
    """The accuracy-robustness Pareto plot: clean against robust accuracy, one point per model.

    \b
    Example:
      rsc-bench plot-tradeoff --dataset fashion-mnist --protocol reliable --eps 0.1 --out tradeoff.png
    """
    from robustbench_snn.data import dataset_info
    from robustbench_snn.plots import plot_tradeoff
    from robustbench_snn.registry import list_cards

    dataset = dataset or "fashion-mnist"
    protocol = protocol or "pgd"
    out = _figure_out(out, "tradeoff", dataset, protocol)
    eps = eps if eps is not None else dataset_info(dataset).linf_eps
    table = _table(dataset, protocol, eps, results_dir, select=_selection(quick_runs))
    path = plot_tradeoff(table, {card.name: card for card in list_cards()}, Path(out), f"{dataset}, {protocol}, eps = {eps:.4g}")
    _report_figure(path, len(table), as_json)


@main.command("plot-eps")
@options.table_filters
@FIGURE_OUT
@QUICK_RUNS
@options.as_json
def plot_eps_command(dataset, protocol, eps, results_dir, out, quick_runs, as_json):
    """Robust accuracy against eps, one line per model, from the stored eps sweeps."""
    from robustbench_snn.plots import plot_eps

    dataset = dataset or "fashion-mnist"
    protocol = protocol or "pgd"
    out = _figure_out(out, "eps", dataset, protocol)
    table = _table(dataset, protocol, eps, results_dir, select=_selection(quick_runs))
    path = plot_eps(table, Path(out), f"{dataset}, {protocol}")
    _report_figure(path, table["model"].nunique(), as_json)
