"""``rsc-bench models ...``, ``rsc-bench attacks ...`` and ``rsc-bench names``: browse the registry,
the presets and the names each choice option accepts."""

from __future__ import annotations

from pathlib import Path

import click

from robustbench_snn.cli import options
from robustbench_snn.cli.app import main
from robustbench_snn.errors import UserError


@main.group()
def attacks() -> None:
    """Browse attack protocol presets (shipped, and your own from --attacks-dir)."""


@attacks.command("list")
@options.as_json
def attacks_list(as_json):
    """List attack presets and the members each one runs."""
    from robustbench_snn.attacks import attack_names, build_protocol, get_attack, list_presets
    from robustbench_snn.attacks.protocol import official_presets
    from robustbench_snn.errors import UserError

    found = list_presets()
    shipped = official_presets()
    presets, broken = {}, {}
    for name in found:  # one broken preset of yours is reported, not in the way of the others
        try:
            presets[name] = build_protocol(name)
        except UserError as error:
            broken[name] = str(error)
    if as_json:
        listed = {
            name: {**protocol.model_dump(mode="json"), "file": str(found[name]), "shipped": found[name] == shipped.get(name)}
            for name, protocol in presets.items()
        }
        options.print_json({**listed, **{name: {"file": str(found[name]), "error": message} for name, message in broken.items()}})
        return
    for name, message in broken.items():
        click.echo(f"warning: preset {name} cannot be used: {message}", err=True)
    for name, protocol in presets.items():
        members = ", ".join(member.label() for member in protocol.members)
        yours = "" if found[name] == shipped.get(name) else f" (yours: {found[name]})"
        click.echo(f"{name:<16} {protocol.description}{yours}")
        click.echo(f"{'':<16} members: {members}; eval draws {protocol.eval_draws}" + ("; reliability checks" if protocol.checks else ""))
    click.echo("\nattacks usable directly (--attack NAME):")
    for name in attack_names():
        click.echo(f"  {name:<16} {get_attack(name).description}")


@attacks.command("show")
@click.argument("name")
@options.as_json
def attacks_show(name, as_json):
    """Show one preset in full: its description, every member and its settings, and its file.

    \b
    Example:
      rsc-bench attacks show reliable
    """
    from robustbench_snn.attacks import build_protocol, list_presets

    found = list_presets()
    protocol = build_protocol(name)  # a bare attack name is a one-member protocol; an unknown one says "did you mean"
    if as_json:
        options.print_json({**protocol.model_dump(mode="json"), "file": str(found[name]) if name in found else None})
        return
    click.echo(f"# {found[name]}" if name in found else f"# the attack {name!r} alone, with its defaults")
    click.echo(f"{protocol.name} (version {protocol.version}): {protocol.description}".rstrip(": "))
    settings = protocol.model_dump(exclude={"name", "version", "description", "members", "later_members"}, exclude_none=True)
    click.echo("settings: " + ", ".join(f"{key} {value}" for key, value in settings.items()))
    for stage in ("members", "later_members"):
        for member in getattr(protocol, stage):
            fields = member.model_dump(exclude_defaults=True, exclude={"attack"})
            shown = ", ".join(f"{key}={value}" for key, value in fields.items())
            click.echo(f"  {'later ' if stage == 'later_members' else ''}{member.label():<44} {shown}")


@main.group()
def models() -> None:
    """Browse the model registry (shipped cards, and your own from --models-dir)."""


def _encoding_label(card) -> str:
    sigma = card.encoding.noise_level()
    return card.encoding.label() + (f" sigma={sigma:g}" if sigma is not None else "")


@models.command("list")
@click.option("--dataset", type=options.DATASETS, help="Only models of this dataset.")
@options.as_json
def models_list(dataset, as_json):
    """List registered models with their kind, coding and claimed clean accuracy."""
    import pandas as pd

    from robustbench_snn.registry import list_cards

    cards = list_cards(dataset)
    if as_json:
        options.print_json([card.model_dump(mode="json") for card in cards])
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
@options.as_json
def models_show(name, as_json):
    """Show one model card in full."""
    from robustbench_snn.registry import find_card

    card = find_card(name)
    if as_json:
        options.print_json(card.model_dump(mode="json"))
        return
    click.echo(f"# {card.path}")
    click.echo(card.to_yaml().rstrip())


@models.command("export")
@click.argument("name")
@click.option("--nir", "nir_file", required=True, type=click.Path(dir_okay=False), help="The NIR graph file to write (.nir).")
@options.checkpoint
@options.as_json
def models_export(name, nir_file, checkpoint, as_json):
    """Write a registered SNN (or a card file's) as a NIR graph, for another library or hardware.

    The backbone goes out as NIR nodes; the coding, time steps and normalisation go in the graph's
    metadata, so `load_model(FILE)` (or `load_nir`) rebuilds the model with identical logits.

    \b
    Example:
      rsc-bench models export fmnist_rsc1_s0.2 --nir rsc1.nir
    """
    from robustbench_snn.models.nir_graphs import export_nir
    from robustbench_snn.registry import load_model
    from robustbench_snn.store import ensure_writable

    ensure_writable(Path(nir_file).resolve().parent)
    path = export_nir(load_model(name, checkpoint=checkpoint), nir_file)
    if as_json:
        options.print_json({"model": name, "nir": str(path), "bytes": path.stat().st_size})
    else:
        click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


@models.command("measure")
@click.argument("name")
@click.option("--write", is_flag=True, help="Store the measured accuracy as the card's claim (edits the card file).")
@options.data_dir
@options.as_json
@options.quiet
def models_measure(name, write, data_dir, as_json, quiet):
    """Re-measure a card's claimed clean accuracy (same n and seed) with the current code."""
    from robustbench_snn.evaluation import benchmark
    from robustbench_snn.files import replacing
    from robustbench_snn.registry import find_card, load_model

    card = find_card(name)
    if card.claimed is None:
        raise UserError(f"model {name!r} claims no accuracy (it has no checkpoint)")
    record = benchmark(
        load_model(name, seed=card.claimed.seed),
        n_examples=card.claimed.n_examples,
        seed=card.claimed.seed,
        data_dir=data_dir,
        store=False,
        progress=not quiet,
    )
    if write:
        claimed = card.claimed.model_copy(update={"clean_accuracy": round(record.clean_accuracy, 4)})
        with replacing(card.path) as partial:
            partial.write_text(card.model_copy(update={"claimed": claimed}).to_yaml())
    if as_json:
        options.print_json(
            {
                "model": name,
                "claimed": card.claimed.clean_accuracy,
                "measured": record.clean_accuracy,
                "n_examples": record.n_examples,
                "seed": record.seed,
                "updated": str(card.path) if write else None,
            }
        )
        return
    click.echo(
        f"{name}: claimed {100 * card.claimed.clean_accuracy:.2f}%, measured "
        f"{100 * record.clean_accuracy:.2f}% on {record.n_examples} test images (seed {record.seed})"
    )
    if write:
        click.echo(f"updated {card.path}")


@main.command()
@click.argument("kind", required=False)
@options.as_json
def names(kind, as_json):
    """The names a choice option accepts (--dataset, --grad, --surrogate, --estimator, --encoding,
    --architecture, --kind, --recipe), each asked of its registry; KIND shows one of them.

    \b
    Example:
      rsc-bench names grad
    """
    kinds = options.REGISTRY_CHOICES
    if kind is not None and kind not in kinds:
        raise UserError(f"unknown kind {kind!r}; choose one of {', '.join(sorted(kinds))}")
    shown = {name: list(choice.choices) for name, choice in sorted(kinds.items()) if kind in (None, name)}
    if as_json:
        options.print_json(shown)
        return
    for name, choices in shown.items():
        summaries = kinds[name].summaries() if kind == name else {}
        if not summaries:
            click.echo(f"{name:<14} {', '.join(choices)}")
        width = max((len(choice) for choice in summaries), default=0)
        for choice, summary in summaries.items():
            click.echo(f"{choice:<{max(14, width)}} {summary}")
