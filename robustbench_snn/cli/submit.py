"""``rsc-bench submit ...``: validate and evaluate a model card submitted by pull request."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from robustbench_snn.cli import options
from robustbench_snn.cli.app import main
from robustbench_snn.errors import UserError


@main.group()
def submit() -> None:
    """Validate and evaluate a submitted model card (see CONTRIBUTING.md)."""


@submit.command("check")
@click.argument("card", type=click.Path(dir_okay=False))
@click.option(
    "-n",
    "--n-examples",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Test images to re-measure the claimed clean accuracy on.",
)
@click.option(
    "--attack-examples",
    default=200,
    show_default=True,
    type=click.IntRange(min=1),
    help="Test images for the PGD sanity attack and the reliability checks.",
)
@options.data_dir
@options.as_json
@options.quiet
def submit_check(card, n_examples, attack_examples, data_dir, as_json, quiet):
    """Check a submitted card: schema, checkpoint size and sha256, safe loading, the claimed clean
    accuracy, a PGD sanity attack and the reliability checks. Each check is printed as it
    finishes. Exits 1 if any check fails, 2 if the card file is not there. Stores nothing."""
    from robustbench_snn.submission import check_submission

    if not Path(card).is_file():
        raise UserError(f"{card}: no such card file")

    def show(check) -> None:
        if not as_json:
            click.echo(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")

    report = check_submission(
        card, n_examples=n_examples, attack_examples=attack_examples, data_dir=data_dir, progress=not (quiet or as_json), on_check=show
    )
    if as_json:
        options.print_json(report.as_dict())
    else:
        click.echo("submission OK" if report.passed else "submission FAILED")
    if not report.passed:
        sys.exit(1)


@submit.command("evaluate")
@click.argument("card", type=click.Path(dir_okay=False))
@click.option("--compile", "compile_lif", is_flag=True, help="Use the compiled LIF kernel (faster attacks).")
@options.storing_results
@options.as_json
@options.quiet
def submit_evaluate(card, compile_lif, results_dir, as_json, quiet):
    """Run the leaderboard's protocols (pgd, reliable) on a submitted card and store its result rows."""
    from robustbench_snn.cli.evaluate import print_record
    from robustbench_snn.evaluation import benchmark
    from robustbench_snn.registry import load_model
    from robustbench_snn.store import results_dir as results_store_dir

    if not Path(card).is_file():
        raise UserError(f"{card}: no such card file")
    model = load_model(card).compile_lif(compile_lif)
    records = []
    for protocol in ("pgd", "reliable"):
        record = benchmark(model, attack=protocol, store=True, results_dir=results_dir, progress=not (quiet or as_json))
        records.append(record.as_dict())
        if not as_json:
            print_record(record, str(results_store_dir(results_dir) / f"{record.dataset}.jsonl"))
    if as_json:
        options.print_json(records)
