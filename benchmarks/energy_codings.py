"""What each input coding does to the energy of the same weights: one shipped SNN's backbone fed
by direct, RSC-I, RSC-II and Poisson coding, counted on the same test images (`robustbench_snn.energy`).

Only the coding changes, so the differences are the coding's: Poisson turns the first layer's MACs
into SynOps, RSC-II computes the first layer at every step, and the noise moves the firing rates.

    python benchmarks/energy_codings.py --model fmnist_snn_direct -n 1000 [--draws 4] [--json]
"""

from __future__ import annotations

import json

import click

from robustbench_snn import load_model, load_test_set, measure_energy
from robustbench_snn.models.classifier import Classifier
from robustbench_snn.models.encoders import build_encoder

CODINGS = {
    "direct": ("direct", {}),
    "RSC-I sigma 0.1": ("rsc", {"sigma": 0.1, "variant": "I"}),
    "RSC-I sigma 0.2": ("rsc", {"sigma": 0.2, "variant": "I"}),
    "RSC-I sigma 0.3": ("rsc", {"sigma": 0.3, "variant": "I"}),
    "RSC-II sigma 0.2": ("rsc", {"sigma": 0.2, "variant": "II"}),
    "Poisson": ("poisson", {}),
}


@click.command()
@click.option("--model", default="fmnist_snn_direct", show_default=True, help="A shipped SNN whose backbone is re-coded.")
@click.option("-n", "--n-examples", default=1000, show_default=True)
@click.option("--draws", default=4, show_default=True, help="Encoder draws averaged for the stochastic codings.")
@click.option("--json", "as_json", is_flag=True)
def main(model: str, n_examples: int, draws: int, as_json: bool) -> None:
    base = load_model(model)
    images, _ = load_test_set(base.card.dataset, n_examples=n_examples)
    mean, std = tuple(base.mean.flatten().tolist()), tuple(base.std.flatten().tolist())
    counts = {}
    for label, (encoding, params) in CODINGS.items():
        coded = Classifier(base.backbone, build_encoder(encoding, seed=0, **params), base.timesteps, mean, std)
        counts[label] = measure_energy(coded, images, draws=draws, seed=0)
    if as_json:
        click.echo(json.dumps({"model": model, "n_examples": n_examples, "draws": draws, "counts": counts}, indent=1))
        return
    click.echo("| coding | firing % per spiking layer | overall | first layer fed by | SynOps | MACs | energy µJ |")
    click.echo("|---|---|---|---|---|---|---|")
    for label, energy in counts.items():
        rates = " / ".join(f"{100 * layer['firing_rate']:.1f}" for layer in energy["layers"] if layer["kind"] == "spiking")
        cells = [
            label,
            rates,
            f"{100 * energy['firing_rate']:.1f}",
            energy["layers"][0]["input"],
            f"{energy['synops']:,.0f}",
            f"{energy['macs']:,.0f}",
            f"{energy['energy_pj'] / 1e6:.3f}",
        ]
        click.echo("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
