"""PGD-10 throughput of a CIFAR-shaped ResNet-19 SNN (T = 4) against what its FLOPs allow.

The model is built from a registry card (default ``rsc_resnet19``) with freshly initialised
weights, and attacked on seeded random CIFAR-shaped images: no CIFAR checkpoint or data ships,
and the cost of an attack does not depend on the values. Every image runs every step (no early
stopping), so the figure is the full attack's cost. The run reports:

- the wall time of the `pgd` preset's PGD-10 (EOT as the preset says for the card, or ``--eot``)
  plus its decision on ``-n`` images, and the images/s that makes;
- the model's FLOPs per image for that attack (convolutions and matrix products, counted by
  torch's FLOP counter on one attack step and one decision);
- the best FLOP rate of a large matrix product and of one of the model's convolutions on the
  same device, timed in the same run, and the images/s the model's FLOPs would allow at that
  rate; utilisation is the ratio.

    python benchmarks/resnet19_pgd.py --device cuda -n 10000 --batch-size 256 --compile [--json]
    python benchmarks/resnet19_pgd.py -n 16 --batch-size 8          # a small CPU run
"""

from __future__ import annotations

import json
import time

import click
import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from robustbench_snn.attacks import build_protocol, decide
from robustbench_snn.attacks.methods.pgd import pgd
from robustbench_snn.attacks.primitives import repeated
from robustbench_snn.attacks.runner import gradient_context
from robustbench_snn.data import dataset_info
from robustbench_snn.models import build_classifier
from robustbench_snn.registry import find_card
from robustbench_snn.runtime import keep_freed_memory


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_seconds(function, device: torch.device, repeats: int = 10) -> float:
    best = float("inf")
    for _ in range(repeats + 1):
        synchronize(device)
        started = time.perf_counter()
        function()
        synchronize(device)
        best = min(best, time.perf_counter() - started)
    return best


def dense_flops_per_second(device: torch.device) -> float:
    """The best FLOP rate of a large matrix product and of a ResNet-19 stage-2 convolution
    (256 channels, 16 x 16) on ``device``, with torch's default precision settings as the model runs."""
    generator = torch.Generator().manual_seed(0)
    size, batch = (4096, 64) if device.type == "cuda" else (1024, 8)
    left, right = (torch.rand(size, size, generator=generator).to(device) for _ in range(2))
    matmul = 2 * size**3 / _best_seconds(lambda: torch.mm(left, right), device)
    images = torch.rand(batch, 256, 16, 16, generator=generator).to(device)
    weight = torch.rand(256, 256, 3, 3, generator=generator).to(device)
    convolution = 2 * batch * 256 * 16 * 16 * 256 * 9 / _best_seconds(lambda: F.conv2d(images, weight, padding=1), device)
    return max(matmul, convolution)


def counted_flops(function) -> int:
    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


def attack_step(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, draws: int) -> None:
    """One attack step's forward and backward to the input, as `loss_gradient` runs it; written with
    ``backward()`` because torch's FLOP counter cannot follow ``autograd.grad``."""
    inputs = images.clone().requires_grad_(True)
    F.cross_entropy(model(repeated(inputs, draws)), repeated(labels, draws)).backward()


@click.command()
@click.option("--card", "card_name", default="rsc_resnet19", show_default=True, help="A registered CIFAR-shaped card.")
@click.option("-n", "--n-examples", default=10_000, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1))
@click.option("--eot", type=click.IntRange(min=1), help="EOT draws per gradient [default: the pgd preset's for the card].")
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--compile", "compile_lif", is_flag=True, help="The compiled LIF kernel (rsc-bench evaluate --compile).")
@click.option("--json", "as_json", is_flag=True)
def main(card_name, n_examples, batch_size, eot, seed, device, compile_lif, as_json):
    keep_freed_memory()  # as the CLI does
    device = torch.device(device)
    card = find_card(card_name)
    info = dataset_info(card.dataset)
    torch.manual_seed(seed)
    model = build_classifier(card.spec(), info, seed=seed).to(device).eval()
    protocol = build_protocol("pgd", {"eot": eot}).resolved(info)
    spec = protocol.members[0]
    draws = spec.eot if model.stochastic else 1
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n_examples, *info.input_shape, generator=generator)
    labels = torch.randint(info.num_classes, (n_examples,), generator=generator)

    probe_images, probe_labels = images[:batch_size].to(device), labels[:batch_size].to(device)
    model.requires_grad_(False)  # an attack differentiates the input only
    step_flops = counted_flops(lambda: attack_step(model, probe_images, probe_labels, draws))
    decision_flops = counted_flops(lambda: decide(model, probe_images, probe_labels, protocol.eval_draws))
    flops_per_image = (spec.steps * step_flops + decision_flops) / len(probe_images)

    model.compile_lif(compile_lif)
    with gradient_context(model, spec):
        pgd(model, spec.model_copy(update={"steps": 1}), probe_images[:2], probe_labels[:2], seed, draws)  # warm-up, compile
        synchronize(device)
        started = time.perf_counter()
        for start in tqdm(range(0, n_examples, batch_size), desc="pgd", unit="batch", disable=as_json):
            batch, targets = images[start : start + batch_size].to(device), labels[start : start + batch_size].to(device)
            if model.stochastic:
                model.encoder.seed(seed + start)
            adversarial = pgd(model, spec, batch, targets, seed + start, draws, stop_when_fooled=False)
            decide(model, adversarial, targets, protocol.eval_draws)  # an evaluation decides every attacked image
        synchronize(device)
        seconds = time.perf_counter() - started

    peak = dense_flops_per_second(device)
    result = {
        "card": card.name,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "compiled_lif": compile_lif,
        "timesteps": card.timesteps,
        "n_examples": n_examples,
        "batch_size": batch_size,
        "steps": spec.steps,
        "eot": draws,
        "eval_draws": protocol.eval_draws,
        "seconds": seconds,
        "images_per_second": n_examples / seconds,
        "gflops_per_image": flops_per_image / 1e9,
        "dense_tflops_per_second": peak / 1e12,
        "flop_bound_images_per_second": peak / flops_per_image,
        "utilisation": n_examples / seconds * flops_per_image / peak,
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"{card.name} (T={card.timesteps}) on {result['device_name']}: PGD-{spec.steps}, EOT {draws}, "
        f"{n_examples} images in batches of {batch_size}"
    )
    click.echo(f"  wall time {seconds:.1f} s = {result['images_per_second']:.2f} images/s")
    click.echo(
        f"  {result['gflops_per_image']:.1f} GFLOP per image; dense ops run at {result['dense_tflops_per_second']:.2f} TFLOP/s,"
        f" which would allow {result['flop_bound_images_per_second']:.2f} images/s"
    )
    click.echo(f"  utilisation {100 * result['utilisation']:.1f}%")


if __name__ == "__main__":
    main()
