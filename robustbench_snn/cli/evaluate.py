"""``rsc-bench evaluate``: one model under one attack protocol, one stored record."""

from __future__ import annotations

import click

from robustbench_snn.cli import options
from robustbench_snn.cli.app import main
from robustbench_snn.errors import UserError


def print_record(record, stored: str | None) -> None:
    """An evaluation record as aligned text lines."""
    from robustbench_snn.attacks import FLAGS
    from robustbench_snn.store import STANDARD_SEED
    from robustbench_snn.tables import is_official

    smoothing = record.params.get("smoothed")
    sequential = record.params.get("sequential")
    draws = f", decided over {record.eval_draws} draw(s) of its randomness" if record.stochastic else ""
    if sequential and record.stochastic:
        draws = (
            f", decided by a sequential test: wrong if one draw errs with probability >= {sequential['wrong_at']:g} "
            f"(missed at most {sequential['beta']:g}), right if <= {sequential['right_at']:g} (missed at most {sequential['alpha']:g})"
        )
    if smoothing:
        draws = f", smoothed classifier: majority of {smoothing['votes']} draws"
    robust = "- (no attack)" if record.robust_accuracy is None else f"{100 * record.robust_accuracy:.2f}%"
    threat = "" if record.eps is None else f", {record.norm} eps={record.eps:.4g}"
    rows = [
        ("model", record.model),
        ("dataset", f"{record.dataset} (test split, n={record.n_examples})"),
        ("protocol", f"{record.protocol}{threat}{draws}, seed {record.seed}"),
    ]
    if record.attacks:
        rows.append(("attacks", ", ".join(record.attacks) + (f" (EOT {record.eot})" if record.stochastic else "")))
    if smoothing:
        clean = f"{100 * record.clean_accuracy:.2f}% (the smoothed classifier's majority vote)"
    elif record.stochastic and sequential:
        clean = (
            f"{100 * record.clean_accuracy:.2f}% (by the sequential test, the rule robustness is decided by); "
            f"one draw: {100 * record.clean_accuracy_one_draw:.2f}% (as papers and model cards report)"
        )
    elif record.stochastic and record.eval_draws > 1:
        clean = (
            f"{100 * record.clean_accuracy:.2f}% (right on all {record.eval_draws} draws, the rule robustness is "
            f"decided by); one draw: {100 * record.clean_accuracy_one_draw:.2f}% (as papers and model cards report)"
        )
    else:
        clean = f"{100 * record.clean_accuracy:.2f}%"
    rows += [("clean accuracy", clean), ("robust accuracy", robust)]
    redecided = record.robust_accuracy_redecided
    if record.stochastic and redecided is not None and not smoothing:
        kills, holding = sum(record.member_kills.values()), sum(record.member_kills_holding.values())
        rows.append(
            (
                "re-decided",
                f"{holding} of {kills} kills hold when each fooling input is decided again on fresh draws "
                f"({100 * redecided:.2f}% robust if those that do not are counted robust)",
            )
        )
    for search in record.searches:
        kept = search.get("kept", [search["chosen"]])
        choice = f"{search['field']} {' then '.join(f'{value:g}' for value in kept)} of {search['candidates']}"
        rows.append(("searched", f"{search['member']}: {choice}, chosen on {search['images']}"))
    if record.robust_accuracy is not None and not is_official(record.as_dict()):
        rows.append(
            (
                "official",
                "no: only the unmodified preset on at least its number of images with seed "
                f"{STANDARD_SEED} fills an official cell (this row never shows on the leaderboard)",
            )
        )
    if "certified_accuracy_at_eps" in record.flag_details:
        details = record.flag_details
        rows.append(
            (
                "certified",
                f"{100 * details['certified_accuracy_at_eps']:.2f}% certified at {smoothing['norm']} radius "
                f"{details['certified_radius_needed']:.4g} ({details['certified_but_fooled']} of them fooled)",
            )
        )
    if record.energy is not None:
        from robustbench_snn.cli.energy import energy_summary

        rows.append(("energy", f"{energy_summary(record)} (an estimate; `rsc-bench energy` breaks it down by layer)"))
    rows.append(("flags", ", ".join(record.flags) or "none"))
    rows += [("", f"  {flag}: {FLAGS[flag]}") for flag in record.flags]
    rows += [("skipped", reason) for reason in record.skipped_members]
    rows.append(("run time", f"{record.runtime_s:.1f} s" + (" (stored result reused; --force recomputes)" if record.reused else "")))
    if stored:
        rows.append(("stored in", stored))
    for label, value in rows:
        click.echo(f"{label:<16} {value}")


@main.command()
@options.model
@options.checkpoint
@click.option(
    "--attack",
    default="none",
    show_default=True,
    help="A preset (see `rsc-bench attacks list`), an attack name, or none (clean accuracy only).",
)
@click.option("--dataset", help="Dataset to evaluate on; defaults to the model's own.")
@click.option(
    "-n", "--n-examples", type=click.IntRange(min=1), help="Evaluate the first N test images [default: the preset's, else the whole split]."
)
@options.seed
@options.attack_options
@click.option(
    "--smoothed",
    is_flag=True,
    help="Attack the model's randomized-smoothing classifier (majority vote over --votes draws of its noise), "
    "certify the same images, and flag samples fooled inside their certified radius.",
)
@click.option(
    "--sigma",
    type=options.FiniteFloat(min=0, min_open=True),
    help="With --smoothed: an RSC model's noise level [default: the card's]; models without noise are smoothed with N(0, sigma^2).",
)
@click.option(
    "--votes",
    default=100,
    show_default=True,
    type=click.IntRange(min=1),
    help="With --smoothed: draws whose majority decides each prediction.",
)
@click.option(
    "--cert-draws",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="With --smoothed: draws that bound the certified class's probability (after 100 that select it).",
)
@click.option(
    "--alpha",
    default=0.001,
    show_default=True,
    type=click.FloatRange(0, 0.5, min_open=True, max_open=True),
    help="With --smoothed: failure probability of each certificate.",
)
@click.option(
    "--twin",
    metavar="MODEL",
    help="The ANN that transfer members (source twin) craft on: a registered name or a card file "
    "[default: the registered ANN of the model's dataset and architecture].",
)
@options.batch_size
@options.data_dir
@options.device
@click.option(
    "--compile/--no-compile",
    "compile_lif",
    default=None,
    help="Run LIF layers through a torch.compile kernel: same spikes, several times faster attacks; "
    "the first use on a machine spends tens of seconds compiling [default: on when the attack work pays for it].",
)
@options.storing_results
@click.option("--no-store", is_flag=True, help="Do not store the result row (nor resume an interrupted run).")
@click.option("--force", is_flag=True, help="Recompute even if this exact configuration is stored.")
@click.option("--save-samples", is_flag=True, help="Also store per-sample outcomes (samples/HASH.csv in the results folder).")
@options.as_json
@options.quiet
def evaluate(
    model_name,
    checkpoint,
    attack,
    dataset,
    n_examples,
    seed,
    smoothed,
    sigma,
    votes,
    cert_draws,
    alpha,
    twin,
    batch_size,
    data_dir,
    device,
    compile_lif,
    results_dir,
    no_store,
    force,
    save_samples,
    as_json,
    quiet,
    **overrides,
):
    """Evaluate a model's clean and robust accuracy under an attack protocol.

    \b
    Examples:
      rsc-bench evaluate --model fmnist_rsc1_s0.2
      rsc-bench evaluate --model fmnist_snn_poisson --attack pgd --eps 0.1 --steps 10 \\
          --grad bptt --surrogate atan --eot 8 -n 1000 --seed 0 --json
      rsc-bench evaluate --model fmnist_rsc1_s0.2 --attack reliable -n 500
      rsc-bench evaluate --model fmnist_rsc1_s0.2 --smoothed --attack pgd --norm L2 --eps 0.5 -n 200

    Results are stored in your results folder (--results-dir, else $RSC_BENCH_RESULTS, else your
    data folder), never in the official results unless you name that folder. A result is
    identified by the exact weights, the normalised protocol and the evaluation code: the same
    identity reuses the stored row, an interrupted run resumes from its last finished batch.
    The progress bar moves with every attack step and shows the robust count so far.
    """
    from robustbench_snn.data import dataset_info
    from robustbench_snn.evaluation import benchmark
    from robustbench_snn.evaluation.distributed import is_main_process
    from robustbench_snn.registry import load_model
    from robustbench_snn.store import results_dir as results_store_dir

    if sigma is not None and not smoothed:
        raise UserError("--sigma sets the smoothing noise; pass --smoothed with it")
    model = load_model(model_name, checkpoint=checkpoint, device=device, seed=seed)
    if smoothed:
        from robustbench_snn.certify import SmoothedClassifier

        model = SmoothedClassifier(
            model, dataset_info(model.card.dataset).num_classes, sigma=sigma, seed=seed, votes=votes, n=cert_draws, alpha=alpha
        )
    record = benchmark(
        model,
        dataset=dataset or model.card.dataset,
        attack=attack,
        n_examples=n_examples,
        seed=seed,
        batch_size=batch_size,
        data_dir=data_dir,
        device=device,
        overrides=overrides,
        store=not no_store,
        force=force,
        results_dir=results_dir,
        save_samples=save_samples,
        progress=not quiet,
        compile_lif=compile_lif,
        twin=twin,
    )
    if not is_main_process():
        return  # rank 0 of a torchrun launch prints
    if as_json:
        options.print_json(record.as_dict())
    else:
        stored = None if no_store else str(results_store_dir(results_dir) / f"{record.dataset}.jsonl")
        print_record(record, stored)
