"""Cost of one PGD step (forward + backward to the input) of a shipped SNN against its ANN twin.

The SNN is timed three ways: the plain path (spikingjelly's LIF, every layer run T times), the
shared stem alone (the stem computed once when the encoder repeats one frame, compiled kernel
off: ``--no-compile``), and the default path an attack gets (``rsc-bench evaluate --attack ...``
compiles the LIF kernel whenever the attack work pays for it): shared stem and compiled kernel.
The headline ratio is the default path's. All are timed in the same process, interleaved
with the ANN twin, so the printed ratios SNN / (T x EOT x ANN) are robust to machine noise;
absolute times are printed for information only.

    python benchmarks/attack_throughput.py --model fmnist_snn_direct [--device cuda] [--json]
"""

from __future__ import annotations

import json
import statistics
import time

import click
import torch
from torch.utils.data import DataLoader

from robustbench_snn.attacks.primitives import loss_gradient
from robustbench_snn.data import load_dataset
from robustbench_snn.registry import find_ann_twin, find_card, load_model
from robustbench_snn.runtime import keep_freed_memory

PATHS = {"plain": (False, False), "shared_stem": (True, False), "default": (True, True)}


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
@click.option("--repeats", default=15, show_default=True, help="Timed steps per variant (after 3 warm-up steps).")
@click.option("--eot", default=1, show_default=True, help="EOT draws per gradient for the SNN.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=int, help="torch CPU threads [default: torch's choice].")
@click.option("--json", "as_json", is_flag=True)
def main(name, batch_size, repeats, eot, device, threads, as_json):
    keep_freed_memory()  # as the CLI does
    if threads:
        torch.set_num_threads(threads)
    card = find_card(name)
    twin_card = find_ann_twin(card)
    if twin_card is None:
        raise click.ClickException(f"{name} has no registered ANN twin")
    snn, ann = load_model(name, device=device), load_model(twin_card.name, device=device)
    images, labels = next(iter(DataLoader(load_dataset(card.dataset, "test"), batch_size=batch_size)))
    images, labels = images.to(device), labels.to(device)

    def snn_step(path: str) -> float:
        snn.share_stem, compiled = PATHS[path]
        snn.compile_lif(compiled)
        return step_seconds(snn, images, labels, eot)

    for _ in range(3):
        for path in PATHS:
            snn_step(path)
        step_seconds(ann, images, labels, 1)
    times: dict[str, list[float]] = {path: [] for path in [*PATHS, "ann"]}
    for _ in range(repeats):
        for path in PATHS:
            times[path].append(snn_step(path))
        times["ann"].append(step_seconds(ann, images, labels, 1))
    median = {path: statistics.median(values) for path, values in times.items()}
    result = {
        "model": name,
        "twin": twin_card.name,
        "device": device,
        "threads": torch.get_num_threads(),
        "timesteps": card.timesteps,
        "eot": eot,
        "batch_size": batch_size,
        "ann_ms_per_image": 1000 * median["ann"] / batch_size,
        **{f"{path}_ms_per_image": 1000 * median[path] / batch_size for path in PATHS},
        **{f"ratio_{path}": median[path] / (card.timesteps * eot * median["ann"]) for path in PATHS},
    }
    result["headline_ratio"] = result["ratio_default"]
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"{name} (T={card.timesteps}, EOT {eot}) vs {twin_card.name}, batch {batch_size}, {device}, "
        f"{result['threads']} threads; one PGD step, ms/image and SNN / (T x EOT x ANN):"
    )
    click.echo(f"  ANN twin               {result['ann_ms_per_image']:.3f}")
    for path in PATHS:
        click.echo(f"  SNN {path:<20} {result[f'{path}_ms_per_image']:.3f}   ratio {result[f'ratio_{path}']:.2f}")


if __name__ == "__main__":
    main()
