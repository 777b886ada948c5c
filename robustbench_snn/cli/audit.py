"""``rsc-bench audit``: every attack family alone beside a protocol, to test the protocol itself."""

from __future__ import annotations

import click

from robustbench_snn.cli import options
from robustbench_snn.cli.app import main


@main.command("audit")
@click.argument("model_name", metavar="MODEL")
@options.checkpoint
@click.option("--protocol", default="reliable", show_default=True, help="The protocol under audit.")
@click.option(
    "--attacks",
    "attack_preset",
    default="audit",
    show_default=True,
    help="Preset whose members each run alone (the shipped audit preset lists every family).",
)
@click.option("-n", "--n-examples", default=1000, show_default=True, type=click.IntRange(min=1), help="Audit on the first N test images.")
@options.seed
@options.batch_size
@options.data_dir
@options.device
@click.option("--compile/--no-compile", "compile_lif", default=True, show_default=True, help="Run LIF layers through the compiled kernel.")
@options.storing_results
@click.option("--no-store", is_flag=True, help="Do not store the audit.")
@options.as_json
@options.quiet
def audit_command(
    model_name,
    checkpoint,
    protocol,
    attack_preset,
    n_examples,
    seed,
    batch_size,
    data_dir,
    device,
    compile_lif,
    results_dir,
    no_store,
    as_json,
    quiet,
):
    """Run every attack family alone beside a protocol, on the same images and seed.

    Prints each attack's robust accuracy alone, the samples only it broke, the survivors of the
    protocol it broke and its run time; the worst case over all; and whether the attacks broke
    more of the protocol's survivors than re-running the protocol's first member with another
    seed does (the noise of re-deciding a stochastic model). If so, the protocol is too weak on
    this model and the audit is flagged.

    Stored audits resume after a kill from their last finished batch; launched by torchrun
    (``torchrun --nproc-per-node N -m robustbench_snn audit ...``) the batches are shared among
    the ranks and the report is the single process's.
    """
    from robustbench_snn.audit import audit
    from robustbench_snn.evaluation.distributed import is_main_process
    from robustbench_snn.registry import load_model
    from robustbench_snn.store import audits_path

    model = load_model(model_name, checkpoint=checkpoint, device=device, seed=seed).compile_lif(compile_lif)
    report = audit(
        model,
        protocol=protocol,
        attacks=attack_preset,
        n_examples=n_examples,
        seed=seed,
        batch_size=batch_size,
        data_dir=data_dir,
        device=device,
        progress=not quiet,
        store=not no_store,
        results_dir=results_dir,
    )
    if not is_main_process():
        return  # rank 0 of a torchrun launch prints
    row = {**report.as_dict(), "checkpoint_sha256": model.checkpoint_sha256}
    stored = None if no_store else audits_path(report.dataset, results_dir)
    if as_json:
        options.print_json(row)
        return
    click.echo(f"{report.model} on {report.dataset} (n={report.n_examples}, seed {report.seed}): clean {100 * report.clean_accuracy:.1f}%")
    click.echo(f"{'attack alone':<34} {'robust':>7} {'only it':>8} {'beat ' + report.protocol:>14} {'time':>8}")
    for entry in sorted(report.entries, key=lambda entry: entry.robust_accuracy):
        click.echo(
            f"{entry.attack:<34} {100 * entry.robust_accuracy:6.1f}% {entry.only_this:>8} "
            f"{entry.fooled_protocol_survivors:>14} {entry.seconds:>7.0f}s"
        )
    click.echo(f"{report.protocol:<34} {100 * report.protocol_accuracy:6.1f}%")
    click.echo(f"{'worst case over all':<34} {100 * report.worst_case_accuracy:6.1f}%")
    click.echo(
        f"the attacks broke {report.broken_survivors} of {report.protocol}'s {report.protocol_survivors} survivors; "
        f"its first member re-run with another seed broke {report.control_kills}"
    )
    verdict = (
        f"FLAGGED: {report.protocol} is too weak on this model (audit_stronger)"
        if report.flagged
        else f"{report.protocol} holds on this model (within the re-seed noise)"
    )
    click.echo(verdict)
    if stored:
        click.echo(f"stored in {stored}")
