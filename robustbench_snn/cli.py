"""The ``rsc-bench`` command line: the only place that prints.

User mistakes (bad options, missing data, broken checkpoints) end with one ``Error:`` line and
exit code 2; nothing else is written in that case.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import click
import pandas as pd
from torch.utils.data import DataLoader

from robustbench_snn.attacks import ATTACKS, build_protocol, list_presets, parse_eps
from robustbench_snn.data import DATASETS, dataset_info
from robustbench_snn.errors import UserError
from robustbench_snn.evaluation import EvaluationRecord, benchmark
from robustbench_snn.models import ARCHITECTURES, GRADIENT_MODES, KINDS, SURROGATES, ModelSpec, NeuronConfig
from robustbench_snn.registry import ModelCard, find_card, list_cards, load_model
from robustbench_snn.results import STANDARD_SEED, ensure_writable
from robustbench_snn.tables import is_official
from robustbench_snn.results import results_dir as results_store_dir
from robustbench_snn.runtime import keep_freed_memory
from robustbench_snn.training.recipes import RECIPES


class UserFacingError(click.ClickException):
    exit_code = 2


class Cli(click.Group):
    """A click group that reports `UserError`s as one clean message."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as error:
            raise UserFacingError(str(error)) from None


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="robustbench-snn")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """rsc-bench: adversarial robustness of spiking neural networks against ANN baselines.

    Evaluate registered models (or your own checkpoints) under named attack protocols, and
    browse the registry. Run `rsc-bench COMMAND --help` for each command.
    """
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # torch.compile's note that a CPU-only machine has no CUDA runtime is not news to a user.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    keep_freed_memory()


def _print_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2))


def _encoding_label(card: ModelCard) -> str:
    encoding = card.encoding
    if encoding.name == "rsc":
        return f"rsc-{encoding.variant} sigma={encoding.sigma:g}"
    return encoding.name


seed_option = click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**63 - 1),
                           help="Seed of encoder draws, attack randomness and training; 0 is the standard seed of official rows.")
storing_results = click.option(
    "--results-dir", type=click.Path(file_okay=False),
    help="Where rows are stored [default: $RSC_BENCH_RESULTS, else your data folder; the official store results/ only when named].",
)
reading_results = click.option(
    "--results-dir", type=click.Path(file_okay=False),
    help="Read rows from this folder, e.g. your own runs' [default: $RSC_BENCH_RESULTS, else the official results/].",
)


# evaluate ---------------------------------------------------------------------------------


class EpsType(click.ParamType):
    """An eps as a number or a fraction such as 8/255."""

    name = "EPS"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        try:
            return parse_eps(value)
        except UserError as error:
            self.fail(str(error), param, ctx)


FLAG_MEANINGS = {
    "stochastic_without_eot": "a stochastic model was attacked with single-draw gradients (use --eot)",
    "zero_gradients": "many input gradients are zero or not finite (gradient masking?)",
    "non_monotone_eps": "an attack at eps/2 fooled samples that every attack at eps missed",
    "more_steps_stronger": "4x the attack steps fooled samples that every attack missed (not converged)",
    "blackbox_stronger": "a black-box attack fooled samples the white-box attacks missed",
    "unbounded_not_zero": "samples every attack missed stayed robust with eps covering the whole input range",
    "below_certified": "the smoothed classifier was fooled inside its certified radius (a bug in the attack or the certificate)",
    "reduced_protocol": "members of the protocol could not run on this model (see skipped): a reduced protocol, not the preset",
}


def _print_record(record: EvaluationRecord, stored: str | None) -> None:
    smoothing = record.params.get("smoothed")
    draws = f", decided over {record.eval_draws} encoder draw(s)" if record.stochastic else ""
    if smoothing:
        draws = f", smoothed classifier: majority of {smoothing['votes']} draws"
    if record.robust_accuracy is None:
        robust = "- (no attack)"
    else:
        robust = f"{100 * record.robust_accuracy:.2f}%"
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
    elif record.stochastic and record.eval_draws > 1:
        clean = (f"{100 * record.clean_accuracy:.2f}% (right on all {record.eval_draws} draws, the rule robustness is "
                 f"decided by); one draw: {100 * record.clean_accuracy_one_draw:.2f}% (as papers and model cards report)")
    else:
        clean = f"{100 * record.clean_accuracy:.2f}%"
    rows += [
        ("clean accuracy", clean),
        ("robust accuracy", robust),
    ]
    if record.robust_accuracy is not None and not is_official(record.as_dict()):
        rows.append(("official", "no: only the unmodified preset on at least its number of images with seed "
                                 f"{STANDARD_SEED} fills an official cell (this row never shows on the leaderboard)"))
    if "certified_accuracy_at_eps" in record.flag_details:
        details = record.flag_details
        rows.append(("certified", f"{100 * details['certified_accuracy_at_eps']:.2f}% certified at {smoothing['norm']} radius "
                                  f"{details['certified_radius_needed']:.4g} ({details['certified_but_fooled']} of them fooled)"))
    rows.append(("flags", ", ".join(record.flags) or "none"))
    rows += [("", f"  {flag}: {FLAG_MEANINGS[flag]}") for flag in record.flags]
    rows += [("skipped", reason) for reason in record.skipped_members]
    rows.append(("run time", f"{record.runtime_s:.1f} s" + (" (stored result reused; --force recomputes)" if record.reused else "")))
    if stored:
        rows.append(("stored in", stored))
    for label, value in rows:
        click.echo(f"{label:<16} {value}")


@main.command()
@click.option("--model", "model_name", required=True, help="Registered model name, or a model card file (.yaml).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Your own weights for the model's architecture (.safetensors, .pt, .pth).")
@click.option("--attack", default="none", show_default=True,
              help="A preset from attacks/ (see `rsc-bench attacks list`), an attack name, or none (clean accuracy only).")
@click.option("--dataset", help="Dataset to evaluate on; defaults to the model's own.")
@click.option("-n", "--n-examples", type=click.IntRange(min=1), help="Evaluate the first N test images [default: the preset's, else the whole split].")
@seed_option
@click.option("--eps", type=EpsType(), help="Perturbation budget, e.g. 0.1 or 8/255 [default: the dataset's threat model].")
@click.option("--norm", type=click.Choice(["Linf", "L2"]), help="Threat model norm.")
@click.option("--steps", type=click.IntRange(min=1), help="Attack iterations.")
@click.option("--step-size", type=EpsType(), help="PGD step size [default: 2.5 eps / steps].")
@click.option("--restarts", type=click.IntRange(min=1), help="Random restarts.")
@click.option("--random-start/--no-random-start", default=None, help="Start PGD at a random point in the eps-ball.")
@click.option("--grad", type=click.Choice(list(GRADIENT_MODES)), help="SNN gradient mode: bptt, bptr, rga or act.")
@click.option("--surrogate", type=click.Choice(sorted(SURROGATES)), help="Surrogate derivative for --grad bptt [default: the model's training surrogate].")
@click.option("--surrogate-alpha", type=click.FloatRange(min=0, min_open=True), help="Surrogate sharpness.")
@click.option("--eot", type=click.IntRange(min=1), help="EOT draws averaged per gradient (stochastic models).")
@click.option("--eval-draws", type=click.IntRange(min=1), help="Draws deciding a stochastic model's prediction: correct only if right on every draw.")
@click.option("--queries", type=click.IntRange(min=1), help="Query budget of the Square attack.")
@click.option("--source", help="Source model of a transfer attack (a registered name, or twin).")
@click.option("--checks", is_flag=True, default=None, help="Run the attack-based reliability checks (always on in `reliable`).")
@click.option("--smoothed", is_flag=True,
              help="Attack the model's randomized-smoothing classifier (majority vote over --votes draws of its noise), "
                   "certify the same images, and flag samples fooled inside their certified radius.")
@click.option("--sigma", type=click.FloatRange(min=0, min_open=True),
              help="With --smoothed: an RSC model's noise level [default: the card's]; models without noise are smoothed with N(0, sigma^2).")
@click.option("--votes", default=100, show_default=True, type=click.IntRange(min=1),
              help="With --smoothed: draws whose majority decides each prediction.")
@click.option("--cert-draws", default=1000, show_default=True, type=click.IntRange(min=1),
              help="With --smoothed: draws that bound the certified class's probability (after 100 that select it).")
@click.option("--alpha", default=0.001, show_default=True, type=click.FloatRange(0, 0.5, min_open=True, max_open=True),
              help="With --smoothed: failure probability of each certificate.")
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data root [default: $RSC_BENCH_DATA, else the user cache].")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu or cuda.")
@click.option("--compile/--no-compile", "compile_lif", default=None,
              help="Run LIF layers through a torch.compile kernel: same spikes, several times faster attacks; "
                   "the first use on a machine spends tens of seconds compiling [default: on when the attack work pays for it].")
@click.option("--loss", type=click.Choice(["ce", "cw", "dlr"]),
              help="Loss of PGD, SA-PGD, FGSM and transfer: cross-entropy, or the CW or DLR margin on EOT-averaged logits.")
@click.option("--bpda", is_flag=True, default=None,
              help="Give rounding, floor, ceil, trunc and sign an identity backward (BPDA against quantising defences).")
@storing_results
@click.option("--no-store", is_flag=True, help="Do not store the result row (nor resume an interrupted run).")
@click.option("--force", is_flag=True, help="Recompute even if this exact configuration is stored.")
@click.option("--save-samples", is_flag=True, help="Also store per-sample outcomes (results/samples/HASH.csv).")
@click.option("--json", "as_json", is_flag=True, help="Print one machine-readable JSON record.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def evaluate(model_name, checkpoint, attack, dataset, n_examples, seed, eps, norm, steps, step_size, restarts,
             random_start, grad, surrogate, surrogate_alpha, eot, eval_draws, queries, source, checks, smoothed, sigma,
             votes, cert_draws, alpha, batch_size, data_dir, device, compile_lif, loss, bpda, results_dir, no_store, force,
             save_samples, as_json, quiet):
    """Evaluate a model's clean and robust accuracy under an attack protocol.

    \b
    Examples:
      rsc-bench evaluate --model fmnist_rsc1_s0.2
      rsc-bench evaluate --model fmnist_snn_poisson --attack pgd --eps 0.1 --steps 10 \\
          --grad bptt --surrogate atan --eot 8 -n 1000 --seed 0 --json
      rsc-bench evaluate --model fmnist_rsc1_s0.2 --attack reliable -n 500
      rsc-bench evaluate --model fmnist_rsc1_s0.2 --smoothed --attack pgd --norm L2 --eps 0.5 -n 200

    Results are stored in your results folder (--results-dir, else $RSC_BENCH_RESULTS, else your
    data folder), never in the official results/ unless you name it. A result is identified by
    the exact weights, the normalised protocol and the evaluation code: the same identity
    reuses the stored row, an interrupted run resumes from its last finished batch.
    """
    overrides = {
        "eps": eps, "norm": norm, "steps": steps, "step_size": step_size, "restarts": restarts,
        "random_start": random_start, "grad": grad, "surrogate": surrogate, "surrogate_alpha": surrogate_alpha,
        "eot": eot, "eval_draws": eval_draws, "queries": queries, "source": source, "checks": checks,
        "loss": loss, "bpda": bpda,
    }
    model = load_model(model_name, checkpoint=checkpoint, device=device, seed=seed)
    if smoothed:
        from robustbench_snn.certify import SmoothedClassifier

        model = SmoothedClassifier(model, dataset_info(model.card.dataset).num_classes, sigma=sigma, seed=seed,
                                   votes=votes, n=cert_draws, alpha=alpha)
    elif sigma is not None:
        raise UserError("--sigma sets the smoothing noise; pass --smoothed with it")
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
    )
    if as_json:
        _print_json(record.as_dict())
    else:
        stored = None if no_store else str(results_store_dir(results_dir) / f"{record.dataset}.jsonl")
        _print_record(record, stored)


# audit ------------------------------------------------------------------------------------


@main.command("audit")
@click.argument("model_name", metavar="MODEL")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Your own weights for the model's architecture.")
@click.option("--protocol", default="reliable", show_default=True, help="The protocol under audit.")
@click.option("--attacks", "attack_preset", default="audit", show_default=True,
              help="Preset whose members each run alone (attacks/audit.yaml lists every family).")
@click.option("-n", "--n-examples", default=1000, show_default=True, type=click.IntRange(min=1), help="Audit on the first N test images.")
@seed_option
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data root [default: $RSC_BENCH_DATA, else the user cache].")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu or cuda.")
@click.option("--compile/--no-compile", "compile_lif", default=True, show_default=True, help="Run LIF layers through the compiled kernel.")
@storing_results
@click.option("--no-store", is_flag=True, help="Do not store the audit.")
@click.option("--json", "as_json", is_flag=True, help="Print the audit as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def audit_command(model_name, checkpoint, protocol, attack_preset, n_examples, seed, batch_size, data_dir, device,
                  compile_lif, results_dir, no_store, as_json, quiet):
    """Run every attack family alone beside a protocol, on the same images and seed.

    Prints each attack's robust accuracy alone, the samples only it broke, the survivors of the
    protocol it broke and its run time; the worst case over all; and whether the attacks broke
    more of the protocol's survivors than re-running the protocol's first member with another
    seed does (the noise of re-deciding a stochastic model). If so, the protocol is too weak on
    this model and the audit is flagged.
    """
    from robustbench_snn.audit import audit
    from robustbench_snn.results import append_audit

    if not no_store:
        ensure_writable(results_store_dir(results_dir))
    model = load_model(model_name, checkpoint=checkpoint, device=device, seed=seed).compile_lif(compile_lif)
    report = audit(model, protocol=protocol, attacks=attack_preset, n_examples=n_examples, seed=seed,
                   batch_size=batch_size, data_dir=data_dir, device=device, progress=not quiet)
    row = {**report.as_dict(), "checkpoint_sha256": model.checkpoint_sha256}
    stored = None if no_store else append_audit(row, results_dir)
    if as_json:
        _print_json(row)
        return
    click.echo(f"{report.model} on {report.dataset} (n={report.n_examples}, seed {report.seed}): "
               f"clean {100 * report.clean_accuracy:.1f}%")
    click.echo(f"{'attack alone':<34} {'robust':>7} {'only it':>8} {'beat ' + report.protocol:>14} {'time':>8}")
    for entry in sorted(report.entries, key=lambda entry: entry.robust_accuracy):
        click.echo(f"{entry.attack:<34} {100 * entry.robust_accuracy:6.1f}% {entry.only_this:>8} "
                   f"{entry.fooled_protocol_survivors:>14} {entry.seconds:>7.0f}s")
    click.echo(f"{report.protocol:<34} {100 * report.protocol_accuracy:6.1f}%")
    click.echo(f"{'worst case over all':<34} {100 * report.worst_case_accuracy:6.1f}%")
    click.echo(f"the attacks broke {report.broken_survivors} of {report.protocol}'s {report.protocol_survivors} survivors; "
               f"its first member re-run with another seed broke {report.control_kills}")
    verdict = (f"FLAGGED: {report.protocol} is too weak on this model (audit_stronger)" if report.flagged
               else f"{report.protocol} holds on this model (within the re-seed noise)")
    click.echo(verdict)
    if stored:
        click.echo(f"stored in {stored}")


# attacks ----------------------------------------------------------------------------------


@main.group()
def attacks() -> None:
    """Browse attack protocol presets (attacks/*.yaml)."""


@attacks.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the presets as JSON.")
def attacks_list(as_json):
    """List attack presets and the members each one runs."""
    presets = {name: build_protocol(name) for name in list_presets()}
    if as_json:
        _print_json({name: protocol.model_dump(mode="json") for name, protocol in presets.items()})
        return
    for name, protocol in presets.items():
        members = ", ".join(member.label() for member in protocol.members)
        click.echo(f"{name:<16} {protocol.description}")
        click.echo(f"{'':<16} members: {members}; eval draws {protocol.eval_draws}"
                   + ("; reliability checks" if protocol.checks else ""))
    click.echo(f"\nattack names usable directly: {', '.join(ATTACKS)}")


# models -----------------------------------------------------------------------------------


@main.group()
def models() -> None:
    """Browse the model registry (cards under models/<dataset>/)."""


@models.command("list")
@click.option("--dataset", type=click.Choice(sorted(DATASETS)), help="Only models of this dataset.")
@click.option("--json", "as_json", is_flag=True, help="Print the cards as JSON.")
def models_list(dataset, as_json):
    """List registered models with their kind, coding and claimed clean accuracy."""
    cards = list_cards(dataset)
    if as_json:
        _print_json([card.model_dump(mode="json") for card in cards])
        return
    if not cards:
        click.echo("no registered models" + (f" for {dataset}" if dataset else ""))
        return
    table = pd.DataFrame(
        {
            "name": card.name,
            "dataset": card.dataset,
            "kind": card.kind,
            "encoding": _encoding_label(card),
            "T": card.timesteps,
            "architecture": card.architecture.name,
            "clean": "-" if card.claimed is None else f"{100 * card.claimed.clean_accuracy:.2f}%",
            "checkpoint": "yes" if card.checkpoint else "not trained yet",
        }
        for card in cards
    )
    click.echo(table.to_string(index=False))


@models.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
def models_show(name, as_json):
    """Show one model card in full."""
    card = find_card(name)
    if as_json:
        _print_json(card.model_dump(mode="json"))
        return
    click.echo(f"# {card.path}")
    click.echo(card.to_yaml().rstrip())


@models.command("measure")
@click.argument("name")
@click.option("--write", is_flag=True, help="Store the measured accuracy as the card's claim.")
@click.option("--data-dir", type=click.Path(file_okay=False))
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def models_measure(name, write, data_dir, quiet):
    """Re-measure a card's claimed clean accuracy (same n and seed) with the current code."""
    card = find_card(name)
    if card.claimed is None:
        raise UserError(f"model {name!r} claims no accuracy (it has no checkpoint)")
    record = benchmark(load_model(name, seed=card.claimed.seed), n_examples=card.claimed.n_examples,
                       seed=card.claimed.seed, data_dir=data_dir, progress=not quiet)
    click.echo(f"{name}: claimed {100 * card.claimed.clean_accuracy:.2f}%, measured "
               f"{100 * record.clean_accuracy:.2f}% on {record.n_examples} test images (seed {record.seed})")
    if write:
        claimed = card.claimed.model_copy(update={"clean_accuracy": round(record.clean_accuracy, 4)})
        card.path.write_text(card.model_copy(update={"claimed": claimed}).to_yaml())
        click.echo(f"updated {card.path}")


# results and plots -------------------------------------------------------------------------


def _table(dataset, protocol, eps, results_dir, official_only=True):
    from robustbench_snn.results import load_rows
    from robustbench_snn.tables import results_table

    return results_table(load_rows(dataset, results_dir), list_cards(), dataset=dataset, protocol=protocol, eps=eps,
                         official_only=official_only)


_table_filters = [
    click.option("--dataset", type=click.Choice(sorted(DATASETS)), help="Only this dataset."),
    click.option("--protocol", help="Only this protocol (e.g. pgd, reliable)."),
    click.option("--eps", type=EpsType(), help="Only this eps, e.g. 0.1 or 8/255."),
    reading_results,
]


def table_filters(command):
    for option in reversed(_table_filters):
        command = option(command)
    return command


@main.command()
@table_filters
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--all", "every_row", is_flag=True,
              help="Every stored configuration (quick runs, overrides, other seeds), marked official or not.")
def results(dataset, protocol, eps, results_dir, output, every_row):
    """The stored results as a tidy table: one row per model x protocol x eps, with QTE.

    By default only official rows: the unmodified preset, on at least its number of images, with
    the standard seed (the newest such run); --all lists every configuration. robust_low/high
    is the 95% Clopper-Pearson interval from n; QTE is the area under robust accuracy against
    eps over the official sweep (A(0) = clean accuracy), qte_normalised the same divided by
    the sweep's width. clean counts a stochastic model correct only if right on every decision
    draw; clean_1draw is the accuracy of one draw.
    """
    from robustbench_snn.tables import interval, percent

    table = _table(dataset, protocol, eps, results_dir, official_only=not every_row)
    if output == "json":
        click.echo(table.to_json(orient="records", indent=2))
    elif output == "csv":
        click.echo(table.to_csv(index=False), nl=False)
    elif table.empty:
        click.echo("no stored results match; run `rsc-bench evaluate` first")
    else:
        shown = table.assign(
            clean=table["clean_accuracy"].map(percent),
            clean_1draw=table["clean_accuracy_one_draw"].map(percent),
            robust=table["robust_accuracy"].map(percent),
            ci95=[interval(low, high) for low, high in zip(table["robust_low"], table["robust_high"])],
            qte_norm=table["qte_normalised"].map(percent),
            flags=[", ".join(flags) or "-" for flags in table["flags"]],
        )
        columns = ["model", "family", "protocol", "norm", "eps", "grad", "eot", "n_examples", "clean", "clean_1draw", "robust",
                   "ci95", "qte_norm", "flags"] + (["official"] if every_row else [])
        click.echo(shown[columns].to_string(index=False, float_format=lambda value: f"{value:.4g}"))


@main.command("plot-tradeoff")
@table_filters
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Figure file (.png, .svg or .pdf).")
def plot_tradeoff_command(dataset, protocol, eps, results_dir, out):
    """The accuracy-robustness Pareto plot: clean against robust accuracy, one point per model.

    \b
    Example:
      rsc-bench plot-tradeoff --dataset fashion-mnist --protocol reliable --eps 0.1 --out tradeoff.png
    """
    from robustbench_snn.plots import plot_tradeoff

    ensure_writable(Path(out).resolve().parent)
    dataset = dataset or "fashion-mnist"
    protocol = protocol or "pgd"
    eps = eps if eps is not None else dataset_info(dataset).linf_eps
    table = _table(dataset, protocol, eps, results_dir)
    path = plot_tradeoff(table, {card.name: card for card in list_cards()}, Path(out), f"{dataset}, {protocol}, eps = {eps:.4g}")
    click.echo(f"wrote {path} ({len(table)} models)")


@main.command("plot-eps")
@table_filters
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Figure file (.png, .svg or .pdf).")
def plot_eps_command(dataset, protocol, eps, results_dir, out):
    """Robust accuracy against eps, one line per model, from the stored eps sweeps."""
    from robustbench_snn.plots import plot_eps

    ensure_writable(Path(out).resolve().parent)
    dataset = dataset or "fashion-mnist"
    protocol = protocol or "pgd"
    table = _table(dataset, protocol, eps, results_dir)
    path = plot_eps(table, Path(out), f"{dataset}, {protocol}")
    click.echo(f"wrote {path} ({table['model'].nunique()} models)")


# certify ----------------------------------------------------------------------------------


@main.command()
@click.option("--model", "model_name", required=True, help="Registered model name, or a model card file (.yaml).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Your own weights for the model's architecture.")
@click.option("--sigma", type=click.FloatRange(min=0, min_open=True),
              help="RSC models: their noise level [default: the card's]; models without noise: certify them smoothed with N(0, sigma^2).")
@click.option("--n0", default=100, show_default=True, type=click.IntRange(min=1), help="Draws that select the predicted class.")
@click.option("--draws", "draws", default=10000, show_default=True, type=click.IntRange(min=1),
              help="Noise draws that bound its probability (not -n, the number of images).")
@click.option("--alpha", default=0.001, show_default=True, type=click.FloatRange(0, 0.5, min_open=True, max_open=True),
              help="Failure probability of each certificate.")
@click.option("-n", "--n-examples", default=500, show_default=True, type=click.IntRange(min=1), help="Certify the first N test images.")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1), help="Images sampled together.")
@seed_option
@click.option("--compile", "compile_lif", is_flag=True, help="Run LIF layers through the compiled kernel.")
@click.option("--data-dir", type=click.Path(file_okay=False))
@storing_results
@click.option("--no-store", is_flag=True, help="Do not store the result row.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary (with per-image results) as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def certify(model_name, checkpoint, sigma, n0, draws, alpha, n_examples, batch_size, seed, compile_lif, data_dir,
            results_dir, no_store, as_json, quiet):
    """Certified robustness by randomized smoothing: a provable radius per test image.

    RSC-I models get the L2 certificate of Gaussian smoothing (Cohen et al. 2019), RSC-II the
    same divided by sqrt(T), Poisson-coded models the L1 certificate of rate coding (Mukhoty et
    al. 2024); models without noise are certified smoothed with --sigma. Prints certified
    accuracy at a grid of radii and the mean radius; stores one row (protocol certify).
    """
    from tqdm import tqdm

    from robustbench_snn.certify import certify_model
    from robustbench_snn.data import first_examples, load_dataset
    from robustbench_snn.evaluation import git_commit, versions
    from robustbench_snn.results import append_row

    if not no_store:
        ensure_writable(results_store_dir(results_dir))
    model = load_model(model_name, checkpoint=checkpoint, seed=seed).compile_lif(compile_lif)
    info = dataset_info(model.card.dataset)
    test_set = first_examples(load_dataset(info.name, "test", data_dir), n_examples)
    images, labels = next(iter(DataLoader(test_set, batch_size=len(test_set))))
    with tqdm(total=len(images), desc="certify", unit="img", disable=quiet) as bar:
        def progress(done: int, rate: float) -> None:
            bar.update(done - bar.n)
            bar.set_postfix(draws_per_s=f"{rate:.0f}")

        summary = certify_model(model, images, labels, dataset=info.name, num_classes=info.num_classes, sigma=sigma,
                                n0=n0, n=draws, alpha=alpha, seed=seed, batch_size=batch_size, progress=progress)
    row = {key: value for key, value in summary.as_dict().items() if key != "samples"}
    row.update(protocol="certify", checkpoint_sha256=model.checkpoint_sha256, versions=versions(), git_commit=git_commit(),
               timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    if not no_store:
        append_row(row, results_dir)
    if as_json:
        _print_json({**row, "samples": summary.samples})
        return
    click.echo(f"{'model':<18} {summary.model}")
    click.echo(f"{'certificate':<18} {summary.certificate}: {summary.norm}"
               + (f", sigma {summary.sigma:g}" if summary.sigma is not None else "") + f", T={summary.timesteps}")
    click.echo(f"{'sampling':<18} n0={n0}, n={draws}, alpha={alpha:g}, {summary.n_examples} test images, seed {seed}")
    click.echo(f"{'smoothed accuracy':<18} {100 * summary.smoothed_accuracy:.2f}% (abstained {100 * summary.abstained:.1f}%)")
    click.echo(f"{'mean radius':<18} {summary.mean_radius:.4f} ({summary.norm})")
    click.echo(f"{'certified accuracy':<18} " + ", ".join(f"r={radius}: {100 * value:.1f}%" for radius, value in summary.curve.items()))
    click.echo(f"{'run time':<18} {summary.runtime_s:.1f} s ({summary.draws_per_second:.0f} draws/s)")


# leaderboard ------------------------------------------------------------------------------


@main.group()
def leaderboard() -> None:
    """Build the static leaderboard site from results/ and models/."""


@leaderboard.command("build")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder to write the site into (the committed one is leaderboard/).")
@reading_results
def leaderboard_build(out, results_dir):
    """Write the site: a ranked page per dataset, a page per model, the Pareto plot, the data as JSON.

    The pages open from file:// with no network.
    """
    from robustbench_snn.leaderboard import build_site
    from robustbench_snn.results import reading_dir

    reading_dir(results_dir)
    ensure_writable(Path(out))
    click.echo(f"wrote {build_site(out, results_dir)}")


# submit -----------------------------------------------------------------------------------


@main.group()
def submit() -> None:
    """Validate and evaluate a submitted model card (see CONTRIBUTING.md)."""


@submit.command("check")
@click.argument("card", type=click.Path(dir_okay=False))
@click.option("-n", "--n-examples", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Test images to re-measure the claimed clean accuracy on.")
@click.option("--attack-examples", default=200, show_default=True, type=click.IntRange(min=1),
              help="Test images for the PGD sanity attack and the reliability checks.")
@click.option("--data-dir", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def submit_check(card, n_examples, attack_examples, data_dir, as_json):
    """Check a submitted card: schema, checkpoint size and sha256, safe loading, the claimed clean
    accuracy, a PGD sanity attack and the reliability checks. Exits 1 if any check fails, 2 if
    the card file is not there."""
    from robustbench_snn.submission import check_submission

    if not Path(card).is_file():
        raise UserError(f"{card}: no such card file")
    report = check_submission(card, n_examples=n_examples, attack_examples=attack_examples, data_dir=data_dir)
    if as_json:
        _print_json(report.as_dict())
    else:
        for check in report.checks:
            click.echo(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
        click.echo("submission OK" if report.passed else "submission FAILED")
    if not report.passed:
        sys.exit(1)


@submit.command("evaluate")
@click.argument("card", type=click.Path(dir_okay=False))
@click.option("--compile", "compile_lif", is_flag=True, help="Use the compiled LIF kernel (faster attacks).")
@storing_results
def submit_evaluate(card, compile_lif, results_dir):
    """Run the leaderboard's protocols (pgd, reliable) on a submitted card and store its result rows."""
    model = load_model(card).compile_lif(compile_lif)
    for protocol in ("pgd", "reliable"):
        record = benchmark(model, attack=protocol, store=True, results_dir=results_dir, progress=True)
        _print_record(record, str(results_store_dir(results_dir) / f"{record.dataset}.jsonl"))


# train ------------------------------------------------------------------------------------


def _command_line(ctx: click.Context, always: tuple[str, ...], never: tuple[str, ...]) -> str:
    """The command as a user would retype it: every option that differs from its default (and ``always``)."""
    words = ["rsc-bench", ctx.info_name]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.name in never or value is None or (value == param.default and param.name not in always):
            continue
        flag = max(param.opts, key=len)
        words += [flag] if getattr(param, "is_flag", False) else [flag, str(value)]
    return shlex.join(words)


@main.command()
@click.option("--dataset", required=True, type=click.Choice(sorted(DATASETS)))
@click.option("--arch", required=True, type=click.Choice(sorted(ARCHITECTURES)), help="Registered architecture.")
@click.option("--kind", required=True, type=click.Choice(KINDS), help="snn (LIF neurons) or ann (ReLU twin).")
@click.option("--encoding", default="direct", show_default=True, type=click.Choice(["direct", "poisson", "rsc"]))
@click.option("--sigma", type=click.FloatRange(min=0), help="RSC noise level (rsc encoding).")
@click.option("--variant", type=click.Choice(["I", "II"]), help="RSC variant: I one draw for all steps, II a draw per step.")
@click.option("--timesteps", "-T", type=click.IntRange(min=1), help="Simulation steps [default: 4 for snn, 1 for ann].")
@click.option("--surrogate", default="atan", show_default=True, type=click.Choice(sorted(SURROGATES)), help="Surrogate for BPTT training.")
@click.option("--recipe", default="standard", show_default=True, type=click.Choice(RECIPES),
              help="standard (cross-entropy), rsc (the same, for RSC models), ersct (distillation from --teacher), "
                   "pgd-at (PGD adversarial training).")
@click.option("--teacher", help="ersct: the registered ANN teacher of the same architecture.")
@click.option("--kd-weight", type=click.FloatRange(min=0), help="ersct: weight of the distillation term [default: 1].")
@click.option("--kd-temperature", type=click.FloatRange(min=0, min_open=True), help="ersct: softening temperature [default: 4].")
@click.option("--presynaptic-weight", type=click.FloatRange(min=0), help="ersct: weight of the pre-synaptic loss [default: 0.5].")
@click.option("--at-eps", type=EpsType(), help="pgd-at: Linf radius [default: the dataset's threat model].")
@click.option("--at-steps", type=click.IntRange(min=1), help="pgd-at: PGD steps per batch [default: 5].")
@click.option("--epochs", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--lr", default=1e-3, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--train-examples", type=click.IntRange(min=1), help="Train on the first N training images only.")
@seed_option
@click.option("--out", required=True, type=click.Path(), help="Output stem: writes OUT.safetensors and OUT.yaml.")
@click.option("--data-dir", type=click.Path(file_okay=False))
@click.option("--device", default="cpu", show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def train(dataset, arch, kind, encoding, sigma, variant, timesteps, surrogate, recipe, teacher, kd_weight, kd_temperature,
          presynaptic_weight, at_eps, at_steps, epochs, batch_size, lr, train_examples, seed, out, data_dir, device, quiet):
    """Train a model with a paper recipe and write its checkpoint and model card.

    \b
    Examples:
      rsc-bench train --dataset fashion-mnist --arch small_cnn --kind snn --encoding rsc \\
          --sigma 0.2 --variant I --recipe rsc --epochs 4 --seed 0 --out models/fashion-mnist/my_rsc
      rsc-bench train --dataset fashion-mnist --arch small_cnn --kind snn --encoding rsc \\
          --sigma 0.2 --variant I --recipe ersct --teacher fmnist_ann --epochs 4 --out models/fashion-mnist/my_ersct
      rsc-bench train --dataset fashion-mnist --arch small_cnn --kind ann --recipe pgd-at --at-steps 5 \\
          --epochs 4 --out models/fashion-mnist/my_ann_at

    The card records this exact command, the seed and every hyperparameter, and the clean
    accuracy measured on the full test split.
    """
    from robustbench_snn.training import TrainingConfig, entry_paths, train_classifier, write_entry

    if (encoding == "rsc") != (sigma is not None and variant is not None):
        raise UserError("--sigma and --variant go together, and only with --encoding rsc")
    if kind == "ann" and timesteps not in (None, 1):
        raise UserError("an ann runs one step; drop --timesteps")
    spec = ModelSpec(
        architecture=arch,
        kind=kind,
        encoding=encoding,
        encoding_params={"sigma": sigma, "variant": variant} if encoding == "rsc" else {},
        timesteps=timesteps or (4 if kind == "snn" else 1),
        neuron=NeuronConfig(surrogate=surrogate),
    )
    config = TrainingConfig(
        recipe=recipe, epochs=epochs, batch_size=batch_size, learning_rate=lr, seed=seed, train_examples=train_examples,
        teacher=teacher, kd_weight=kd_weight, kd_temperature=kd_temperature, presynaptic_weight=presynaptic_weight,
        at_eps=at_eps, at_steps=at_steps,
    )
    command = _command_line(click.get_current_context(), always=("seed",), never=("quiet",))
    ensure_writable(Path(out).resolve().parent)
    model = train_classifier(spec, dataset, config, data_dir=data_dir, device=device, progress=not quiet)
    card = write_entry(
        model, spec, dataset, config, Path(out), command, data_dir=data_dir, device=device, progress=not quiet
    )
    click.echo(f"wrote {entry_paths(Path(out))[1]}: clean accuracy {100 * card.claimed.clean_accuracy:.2f}% "
               f"on {card.claimed.n_examples} test images")
