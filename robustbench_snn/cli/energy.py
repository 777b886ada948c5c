"""``rsc-bench energy``: spikes, synaptic operations and estimated energy of a model, layer by layer."""

from __future__ import annotations

import click

from robustbench_snn.cli import options
from robustbench_snn.cli.app import main


def _count(value) -> str:
    return "-" if value is None or value != value else f"{value:,.0f}"


def _nanojoules(value) -> str:
    return "-" if value is None or value != value else f"{value / 1000:,.1f}"


def energy_summary(record) -> str:
    """The record's estimated energy per image in one line: clean, and under its attack with the change."""
    energy = record.energy
    clean = energy["clean"]["energy_pj"]
    line = f"{clean / 1e6:.4f} uJ on clean inputs"
    if energy["adversarial"] is not None:
        attacked = energy["adversarial"]["energy_pj"]
        line += f", {attacked / 1e6:.4f} uJ on the final inputs of {record.protocol} ({100 * (attacked / clean - 1):+.1f}%)"
    return line


def print_breakdown(record) -> None:
    """The record's energy as a per-layer table with totals and the constants it assumes."""
    import pandas as pd

    from robustbench_snn.tables import energy_breakdown, percent

    energy = record.energy
    table = energy_breakdown(energy)
    attacked = energy["adversarial"] is not None
    draws = f", averaged over {energy['draws']} draws of its randomness" if energy["draws"] > 1 else ""
    click.echo(f"{record.model} on {record.n_examples} {record.dataset} test images{draws}; per image, one forward pass:")
    shown = {
        "layer": table["layer"],
        "op": table["operation"],
        "fed by": table["input"],
        "neurons": table["neurons"].map(_count),
        "firing %": table["firing_rate"].map(percent),
        "SynOps": table["synops"].map(_count),
        "MACs": table["macs"].map(_count),
        "energy nJ": table["energy_pj"].map(_nanojoules),
    }
    if attacked:
        shown.update(
            {
                "firing % (attack)": table["firing_rate_adv"].map(percent),
                "SynOps (attack)": table["synops_adv"].map(_count),
                "energy nJ (attack)": table["energy_pj_adv"].map(_nanojoules),
            }
        )
    click.echo(pd.DataFrame(shown).to_string(index=False))
    click.echo(f"\nestimated energy per image: {energy_summary(record)}")
    constants = energy["constants"]
    note = (
        f"{constants['ac_pj']} pJ per accumulate (SynOp), {constants['mac_pj']} pJ per multiply-accumulate: "
        f"{constants['source']}. Counts {constants['counts']}; {constants['note']}."
    )
    click.echo(click.wrap_text(note, width=100))


@main.command()
@options.model
@options.checkpoint
@click.option(
    "--attack",
    default="none",
    show_default=True,
    help="Also count on the final adversarial inputs of this preset or attack (see `rsc-bench attacks list`).",
)
@options.attack_option("eps")
@click.option("-n", "--n-examples", default=1000, show_default=True, type=click.IntRange(min=1), help="Count on the first N test images.")
@options.seed
@options.batch_size
@options.data_dir
@options.device
@options.as_json
@options.quiet
def energy(model_name, checkpoint, attack, eps, n_examples, seed, batch_size, data_dir, device, as_json, quiet):
    """Spikes, firing rates, SynOps, MACs and estimated energy per image, layer by layer.

    A layer fed with spikes does one accumulate per spike and synapse it drives (SynOps); a
    layer fed with real values (the first layer under direct or RSC coding, every ANN layer)
    does multiply-accumulates (MACs). Energy = SynOps x 0.9 pJ + MACs x 4.6 pJ (Horowitz,
    45 nm, 32-bit float): an estimate of the synaptic arithmetic, not a hardware measurement.
    Stochastic models are counted over the protocol's decision draws. With --attack the counts
    are repeated on the protocol's final adversarial inputs, to show whether the attack raised
    the energy. Nothing is stored (`rsc-bench evaluate` stores the same counts in its row).

    \b
    Examples:
      rsc-bench energy --model fmnist_snn_poisson
      rsc-bench energy --model fmnist_rsc1_s0.2 --attack pgd -n 200 --json
      rsc-bench energy --model fmnist_snn_direct --attack pgd --eps 0.2
    """
    from robustbench_snn.evaluation import benchmark
    from robustbench_snn.registry import load_model

    model = load_model(model_name, checkpoint=checkpoint, device=device, seed=seed)
    record = benchmark(
        model,
        dataset=model.card.dataset,
        attack=attack,
        overrides={"eps": eps},
        n_examples=n_examples,
        seed=seed,
        batch_size=batch_size,
        data_dir=data_dir,
        device=device,
        progress=not quiet,
    )
    if as_json:
        options.print_json(
            {
                "model": record.model,
                "dataset": record.dataset,
                "protocol": record.protocol,
                "n_examples": record.n_examples,
                "clean_accuracy": record.clean_accuracy,
                "robust_accuracy": record.robust_accuracy,
                "energy": record.energy,
            }
        )
    else:
        print_breakdown(record)
