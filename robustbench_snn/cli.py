"""The ``rsc-bench`` command line: the only place that prints.

User mistakes (bad options, missing data, broken checkpoints) end with one ``Error:`` line and
exit code 2; nothing else is written in that case.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path

import click
import pandas as pd

from robustbench_snn.data import DATASETS
from robustbench_snn.errors import UserError
from robustbench_snn.evaluation import PROTOCOLS, EvaluationRecord, benchmark
from robustbench_snn.models import ARCHITECTURES, KINDS, SURROGATES, ModelSpec, NeuronConfig
from robustbench_snn.registry import ModelCard, find_card, list_cards, load_model


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


def _print_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2))


def _encoding_label(card: ModelCard) -> str:
    encoding = card.encoding
    if encoding.name == "rsc":
        return f"rsc-{encoding.variant} sigma={encoding.sigma:g}"
    return encoding.name


# evaluate ---------------------------------------------------------------------------------


def _print_record(record: EvaluationRecord) -> None:
    robust = "-" if record.robust_accuracy is None else f"{100 * record.robust_accuracy:.2f}%"
    draws = f", {record.eval_draws} encoder draw(s) per image, seed {record.seed}" if record.stochastic else ""
    rows = [
        ("model", record.model),
        ("dataset", f"{record.dataset} (test split, n={record.n_examples})"),
        ("protocol", record.protocol + draws),
        ("clean accuracy", f"{100 * record.clean_accuracy:.2f}%"),
        ("robust accuracy", robust + (" (no attack)" if record.protocol == "none" else "")),
        ("flags", ", ".join(record.flags) or "none"),
        ("run time", f"{record.runtime_s:.1f} s"),
    ]
    for label, value in rows:
        click.echo(f"{label:<16} {value}")


@main.command()
@click.option("--model", "model_name", required=True, help="Registered model name, or a model card file (.yaml).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Your own weights for the model's architecture (.safetensors, .pt, .pth).")
@click.option("--attack", default="none", show_default=True, type=click.Choice(PROTOCOLS), help="Attack protocol.")
@click.option("--dataset", help="Dataset to evaluate on; defaults to the model's own.")
@click.option("-n", "--n-examples", type=click.IntRange(min=1), help="Evaluate the first N test images [default: the whole test split].")
@click.option("--seed", default=0, show_default=True, help="Seed of the encoder's randomness (stochastic models).")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1))
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data root [default: $RSC_BENCH_DATA, else the user cache].")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu or cuda.")
@click.option("--json", "as_json", is_flag=True, help="Print one machine-readable JSON record.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def evaluate(model_name, checkpoint, attack, dataset, n_examples, seed, batch_size, data_dir, device, as_json, quiet):
    """Evaluate a model's clean (and, with an attack, robust) accuracy on a test split.

    Example: rsc-bench evaluate --model fmnist_rsc1_s0.2 -n 1000 --json
    """
    model = load_model(model_name, checkpoint=checkpoint, device=device, seed=seed)
    record = benchmark(
        model,
        dataset=dataset or model.card.dataset,
        attack=attack,
        n_examples=n_examples,
        seed=seed,
        batch_size=batch_size,
        data_dir=data_dir,
        device=device,
        progress=not quiet,
    )
    if as_json:
        _print_json(record.as_dict())
    else:
        _print_record(record)


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


# train ------------------------------------------------------------------------------------


@main.command()
@click.option("--dataset", required=True, type=click.Choice(sorted(DATASETS)))
@click.option("--arch", required=True, type=click.Choice(sorted(ARCHITECTURES)), help="Registered architecture.")
@click.option("--kind", required=True, type=click.Choice(KINDS), help="snn (LIF neurons) or ann (ReLU twin).")
@click.option("--encoding", default="direct", show_default=True, type=click.Choice(["direct", "poisson", "rsc"]))
@click.option("--sigma", type=click.FloatRange(min=0), help="RSC noise level (rsc encoding).")
@click.option("--variant", type=click.Choice(["I", "II"]), help="RSC variant: I one draw for all steps, II a draw per step.")
@click.option("--timesteps", "-T", type=click.IntRange(min=1), help="Simulation steps [default: 4 for snn, 1 for ann].")
@click.option("--surrogate", default="atan", show_default=True, type=click.Choice(sorted(SURROGATES)), help="Surrogate for BPTT training.")
@click.option("--recipe", default="standard", show_default=True, type=click.Choice(["standard"]))
@click.option("--epochs", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--lr", default=1e-3, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--train-examples", type=click.IntRange(min=1), help="Train on the first N training images only.")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", required=True, type=click.Path(), help="Output stem: writes OUT.safetensors and OUT.yaml.")
@click.option("--data-dir", type=click.Path(file_okay=False))
@click.option("--device", default="cpu", show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def train(dataset, arch, kind, encoding, sigma, variant, timesteps, surrogate, recipe, epochs, batch_size, lr,
          train_examples, seed, out, data_dir, device, quiet):
    """Train a model with a paper recipe and write its checkpoint and model card.

    The card records this exact command, the seed and every hyperparameter, and the clean
    accuracy measured on the full test split.
    """
    from robustbench_snn.training import TrainingConfig, train_classifier, write_entry

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
        recipe=recipe, epochs=epochs, batch_size=batch_size, learning_rate=lr, seed=seed, train_examples=train_examples
    )
    command = "rsc-bench " + shlex.join(sys.argv[1:])
    model = train_classifier(spec, dataset, config, data_dir=data_dir, device=device, progress=not quiet)
    card = write_entry(model, spec, dataset, config, Path(out), command, data_dir=data_dir, progress=not quiet)
    click.echo(f"wrote {Path(out).with_suffix('.yaml')}: clean accuracy {100 * card.claimed.clean_accuracy:.2f}% "
               f"on {card.claimed.n_examples} test images")
