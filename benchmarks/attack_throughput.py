"""Cost of one PGD step (forward + backward to the input) of a shipped SNN against its ANN twin.

Both are timed in the same process, interleaved, so the printed ratio SNN / (T x ANN) is
robust to machine noise; absolute times are printed for information only.

    python benchmarks/attack_throughput.py --model fmnist_snn_direct [--device cuda] [--json]
"""

from __future__ import annotations

import json
import statistics
import time

import click
import torch
from torch.utils.data import DataLoader

from robustbench_snn.attacks.methods import loss_gradient
from robustbench_snn.data import load_dataset
from robustbench_snn.registry import find_ann_twin, find_card, load_model


def step_seconds(model, images, labels, draws: int) -> float:
    if images.is_cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    loss_gradient(model, images, labels, draws)
    if images.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - started


@click.command()
@click.option("--model", "name", default="fmnist_snn_direct", show_default=True, help="A registered SNN.")
@click.option("--batch-size", default=128, show_default=True)
@click.option("--repeats", default=15, show_default=True, help="Timed steps per model (after 3 warm-up steps).")
@click.option("--eot", default=1, show_default=True, help="EOT draws per gradient for the SNN.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=int, help="torch CPU threads [default: torch's choice].")
@click.option("--json", "as_json", is_flag=True)
def main(name, batch_size, repeats, eot, device, threads, as_json):
    if threads:
        torch.set_num_threads(threads)
    card = find_card(name)
    twin_card = find_ann_twin(card)
    if twin_card is None:
        raise click.ClickException(f"{name} has no registered ANN twin")
    snn, ann = load_model(name, device=device), load_model(twin_card.name, device=device)
    images, labels = next(iter(DataLoader(load_dataset(card.dataset, "test"), batch_size=batch_size)))
    images, labels = images.to(device), labels.to(device)
    for _ in range(3):
        step_seconds(snn, images, labels, eot)
        step_seconds(ann, images, labels, 1)
    snn_times, ann_times = [], []
    for _ in range(repeats):
        snn_times.append(step_seconds(snn, images, labels, eot))
        ann_times.append(step_seconds(ann, images, labels, 1))
    snn_step, ann_step = statistics.median(snn_times), statistics.median(ann_times)
    result = {
        "model": name, "twin": twin_card.name, "device": device, "threads": torch.get_num_threads(),
        "timesteps": card.timesteps, "eot": eot, "batch_size": batch_size,
        "snn_ms_per_image": 1000 * snn_step / batch_size, "ann_ms_per_image": 1000 * ann_step / batch_size,
        "ratio_snn_over_T_ann": snn_step / (card.timesteps * eot * ann_step),
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"{name} (T={card.timesteps}, EOT {eot}) vs {twin_card.name}, batch {batch_size}, {device}, "
                   f"{result['threads']} threads")
        click.echo(f"  one PGD step: SNN {result['snn_ms_per_image']:.3f} ms/image, ANN {result['ann_ms_per_image']:.3f} ms/image")
        click.echo(f"  ratio SNN / (T x EOT x ANN) = {result['ratio_snn_over_T_ann']:.2f}")


if __name__ == "__main__":
    main()
