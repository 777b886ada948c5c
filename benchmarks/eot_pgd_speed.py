"""The `pgd` preset with EOT 8 against the way a user would do it today.

Baseline: torchattacks' EOTPGD (sequential EOT draws) on the same weights run the
straightforward way: a spikingjelly single-step network unrolled over T in Python, with
``reset_net`` before every forward. Ours: the runner's PGD (EOT draws batched into one forward,
samples frozen once fooled). Both run in this process on the same samples and seed; robust
accuracy is decided by the same rule for both.

    python benchmarks/eot_pgd_speed.py --model fmnist_rsc1_s0.2 -n 64 [--compile] [--device cuda] [--json]
"""

from __future__ import annotations

import copy
import json
import time

import click
import torch
import torchattacks
from spikingjelly.activation_based import functional
from torch import nn
from torch.utils.data import DataLoader

from robustbench_snn.attacks import build_protocol, decide
from robustbench_snn.attacks.runner import perturb
from robustbench_snn.data import dataset_info, first_examples, load_dataset
from robustbench_snn.registry import load_model
from robustbench_snn.runtime import keep_freed_memory


class StepByStep(nn.Module):
    """The same weights as a single-step spikingjelly network, unrolled over T with reset_net."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model)
        for layer in self.model.spiking_layers:
            layer.timesteps = 1
            layer.lif.step_mode = "s"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        functional.reset_net(self.model.backbone)
        sequence = self.model.encoder(images, self.model.timesteps)
        outputs = [self.model.backbone((step - self.model.mean) / self.model.std) for step in sequence]
        return torch.stack(outputs).mean(0)


def timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


@click.command()
@click.option("--model", "name", default="fmnist_rsc1_s0.2", show_default=True)
@click.option("-n", "--n-examples", default=64, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--compile", "compile_lif", is_flag=True, help="Ours with the compiled LIF kernel (rsc-bench evaluate --compile).")
@click.option("--json", "as_json", is_flag=True)
def main(name, n_examples, seed, device, compile_lif, as_json):
    keep_freed_memory()  # as the CLI does
    model = load_model(name, device=device, seed=seed)
    info = dataset_info(model.card.dataset)
    protocol = build_protocol("pgd").resolved(info)
    spec = protocol.members[0]
    images, labels = next(iter(DataLoader(first_examples(load_dataset(info.name), n_examples), batch_size=n_examples)))
    images, labels = images.to(device), labels.to(device)
    step_size = spec.step_size or 2.5 * spec.eps / spec.steps

    baseline_model = StepByStep(model).eval()
    baseline = torchattacks.EOTPGD(baseline_model, eps=spec.eps, alpha=step_size, steps=spec.steps, eot_iter=spec.eot)
    torch.manual_seed(seed)
    model.encoder.seed(seed)
    baseline_adversarial, baseline_seconds = timed(lambda: baseline(images, labels))
    model.compile_lif(compile_lif)
    if compile_lif:
        perturb(model, spec.model_copy(update={"steps": 1}), images[:2], labels[:2], seed, {})  # compile outside the timing
    model.encoder.seed(seed)
    ours_adversarial, ours_seconds = timed(lambda: perturb(model, spec, images, labels, seed, {}))

    model.encoder.seed(seed + 1)
    clean = decide(model, images, labels, protocol.eval_draws)
    baseline_robust = (clean & decide(model, baseline_adversarial, labels, protocol.eval_draws)).float().mean().item()
    ours_robust = (clean & decide(model, ours_adversarial, labels, protocol.eval_draws)).float().mean().item()
    result = {
        "model": name,
        "device": device,
        "compiled_lif": compile_lif,
        "n_examples": n_examples,
        "eps": spec.eps,
        "steps": spec.steps,
        "eot": spec.eot,
        "baseline_seconds": baseline_seconds,
        "ours_seconds": ours_seconds,
        "speedup": baseline_seconds / ours_seconds,
        "clean_accuracy": clean.float().mean().item(),
        "baseline_robust_accuracy": baseline_robust,
        "ours_robust_accuracy": ours_robust,
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"{name}: PGD-{spec.steps}, EOT {spec.eot}, eps {spec.eps:g}, {n_examples} images, {device}")
        click.echo(f"  torchattacks EOTPGD, step-by-step model: {baseline_seconds:.1f} s, robust {100 * baseline_robust:.1f}%")
        ours = "rsc-bench pgd preset" + (" --compile" if compile_lif else "")
        click.echo(f"  {ours + ':':<39} {ours_seconds:.1f} s, robust {100 * ours_robust:.1f}%")
        click.echo(f"  speedup {result['speedup']:.2f}x")


if __name__ == "__main__":
    main()
