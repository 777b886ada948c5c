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


@submit.command("attack")
@click.argument("attack")
@options.model
@click.option("--by", "submitted_by", required=True, help="Who found the attack, as the leaderboard should credit it.")
@click.option("--url", default=None, help="Where the attack is described (paper, code).")
@click.option("--dataset", default="fashion-mnist", show_default=True, help="The dataset of the official row to test.")
@click.option(
    "--results-dir",
    type=options.Folder(),
    help="Read the official row from, and store a lowering evaluation in, this folder "
    "[default: read the official results, store in $RSC_BENCH_RESULTS, else your data folder].",
)
@options.data_dir
@options.no_store
@options.as_json
def submit_attack(attack, model_name, submitted_by, url, dataset, results_dir, data_dir, no_store, as_json):
    """Test ATTACK (a preset, e.g. from --attacks-dir, or an attack an installed plug-in registers)
    against the official `reliable` row of a registry model: it runs on the samples that row counts
    robust, with its seed and in its threat model; each input that fools the model is decided again
    on a fresh copy of it. When kills hold, the evaluation is stored: the leaderboard then shows the
    lower number with your attribution, and `rsc-bench audit` runs the attack. Exits 0 either way,
    2 on a submission that cannot be tested (nothing stored)."""
    from robustbench_snn.outside import run_outside_attack

    evaluation = run_outside_attack(
        model_name, attack, submitted_by, dataset=dataset, url=url, results_dir=results_dir, data_dir=data_dir, store=not no_store
    )
    if as_json:
        options.print_json({**evaluation.as_dict(), "lowered": evaluation.lowered})
        return
    click.echo(
        f"{attack} against {model_name}'s official {evaluation.protocol} row ({evaluation.row_timestamp[:10]}): "
        f"fooled {evaluation.kills} of its {evaluation.survivors} survivors, {len(evaluation.broken)} held on a fresh decision"
    )
    if evaluation.lowered:
        stored = "" if no_store else " (stored: the leaderboard shows it with your attribution)"
        click.echo(
            f"robust accuracy at most {100 * evaluation.robust_accuracy:.2f}%, was {100 * evaluation.robust_accuracy_row:.2f}%{stored}"
        )
    else:
        click.echo("the number stands; nothing stored")
