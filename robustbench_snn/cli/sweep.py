"""``rsc-bench sweep GRID.yaml``: a grid of evaluations, each cell stored once, on Ray when installed."""

from __future__ import annotations

import click

from robustbench_snn.cli import options
from robustbench_snn.cli.app import main


def _cell_line(summary: dict) -> str:
    robust = "-" if summary["robust_accuracy"] is None else f"{100 * summary['robust_accuracy']:.1f}%"
    eps = "" if summary["eps"] is None else f" eps={summary['eps']:.4g}"
    sigma = "" if summary.get("sigma") is None else f" sigma={summary['sigma']:g}"
    flags = f" flags {', '.join(summary['flags'])}" if summary["flags"] else ""
    if "mean_radius" in summary:  # a certificate
        numbers = f"smoothed {100 * summary['clean_accuracy']:.1f}% mean radius {summary['mean_radius']:.3f}"
    else:
        numbers = f"clean {100 * summary['clean_accuracy']:.1f}% robust {robust}{flags}"
    return f"{summary['status']:<9} {summary['model']:<24} {summary['protocol']:<18}{eps}{sigma} seed {summary['seed']}: {numbers}"


@main.command()
@click.argument("grid", type=click.Path(dir_okay=False))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1, max=4096),
    help="Cells run at once on a local Ray cluster of this many CPUs (needs `pip install robustbench-snn[cluster]`).",
)
@click.option("--address", help="Run on an existing Ray cluster (e.g. auto, or ray://HOST:10001) instead of a local one.")
@click.option("--dry-run", is_flag=True, help="List the cells and stop.")
@options.storing_results
@options.data_dir
@options.as_json
def sweep(grid, workers, address, dry_run, results_dir, data_dir, as_json):
    """Run a sweep file: every combination of its models, attacks, eps and seeds is one evaluation,
    and with ``certify`` every model, seed and sigma one certificate (as `rsc-bench certify`).

    \b
    A sweep file (YAML):
      name: my-sweep
      dataset: fashion-mnist
      models: [fmnist_ann, fmnist_snn_direct]   # or: all
      attacks: [pgd, reliable]                  # presets or attack names
      eps: [0.05, 0.1]                          # optional; default: the dataset's threat model
      seeds: [0]
      n_examples: 1000                          # optional; default: each preset's
      overrides: {steps: 20}                    # optional protocol options
      certify: {n0: 100, draws: 1000, sigma: [null]}   # optional: a certificate per model and seed

    \b
    Examples:
      rsc-bench sweep results/sweeps/zoo.yaml --workers 2
      rsc-bench sweep my_sweep.yaml --address auto --results-dir shared/results

    Each cell is stored like `rsc-bench evaluate` stores it: a cell whose row exists is reused,
    an interrupted cell resumes from its last finished batch, and a rerun of a finished sweep
    computes nothing. Without Ray the cells run one after another here, with the same rows.
    """
    from robustbench_snn.sweep import cells, load_grid, run_sweep

    loaded = load_grid(grid)
    if dry_run:
        planned = [cell.label() for cell in cells(loaded)]
        if as_json:
            options.print_json(planned)
        else:
            click.echo("\n".join(planned) + f"\n{len(planned)} cell(s)")
        return
    on_cell = None if as_json else (lambda summary: click.echo(_cell_line(summary)))
    summaries = run_sweep(loaded, workers=workers, address=address, results_dir=results_dir, data_dir=data_dir, on_cell=on_cell)
    if as_json:
        options.print_json(summaries)
    else:
        computed = sum(summary["status"] == "computed" for summary in summaries)
        click.echo(f"{len(summaries)} cell(s): {computed} computed, {len(summaries) - computed} reused")
