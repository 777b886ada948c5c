"""What the `reliable` protocol costs against its single strongest member run alone.

Both are whole evaluations on the same images and seed, in this process: the strongest member
(the one that fools the most samples, the protocol's first) as a one-member protocol with the
same decision rule, timed before and after `reliable` (their mean is the denominator, so a
drift in machine speed cancels), and `reliable` with its ensemble and reliability checks. A
short warm-up run first compiles every kernel either needs, so neither pays compilation.

    python benchmarks/reliable_cost.py --model fmnist_rsc1_s0.2 -n 1000 [--no-compile] [--device cuda] [--json]
"""

from __future__ import annotations

import json

import click
import torch

from robustbench_snn import benchmark
from robustbench_snn.attacks import Protocol, build_protocol
from robustbench_snn.data import dataset_info
from robustbench_snn.registry import load_model
from robustbench_snn.runtime import keep_freed_memory


@click.command()
@click.option("--model", "name", default="fmnist_rsc1_s0.2", show_default=True)
@click.option("-n", "--n-examples", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option(
    "--compile/--no-compile",
    "compile_lif",
    default=True,
    show_default=True,
    help="The compiled LIF kernel (the default of rsc-bench evaluate for attacks).",
)
@click.option("--json", "as_json", is_flag=True)
def main(name, n_examples, seed, device, compile_lif, as_json):
    keep_freed_memory()  # as the CLI does
    model = load_model(name, device=device, seed=seed).compile_lif(compile_lif)
    reliable = build_protocol("reliable").resolved(dataset_info(model.card.dataset))
    strongest = Protocol(name="strongest-member", members=reliable.members[:1], eval_draws=reliable.eval_draws)

    def run(protocol: Protocol, n: int):
        return benchmark(model, attack=protocol, n_examples=n, seed=seed, device=device, progress=not as_json, compile_lif=compile_lif)

    run(reliable, 8)  # warm-up: compiles the kernels of every member and check
    before = run(strongest, n_examples)
    full = run(reliable, n_examples)
    after = run(strongest, n_examples)
    strongest_seconds = (before.runtime_s + after.runtime_s) / 2
    members_seconds = sum(full.member_seconds.values())
    result = {
        "model": name,
        "device": device,
        "threads": torch.get_num_threads(),
        "compiled_lif": compile_lif,
        "n_examples": n_examples,
        "strongest_member": strongest.members[0].label(),
        "strongest_member_kills_most": max(full.member_kills, key=full.member_kills.get) == full.attacks[0],
        "strongest_seconds": [before.runtime_s, after.runtime_s],
        "reliable_seconds": full.runtime_s,
        "reliable_members_seconds": members_seconds,
        "reliable_other_seconds": full.runtime_s - members_seconds,
        "ratio": full.runtime_s / strongest_seconds,
        "robust_accuracy_strongest": before.robust_accuracy,
        "robust_accuracy_reliable": full.robust_accuracy,
        "flags": full.flags,
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{name}, {n_examples} images, {device}, {result['threads']} threads, compiled LIF: {compile_lif}")
    click.echo(
        f"  {result['strongest_member']} alone: {before.runtime_s:.1f} s / {after.runtime_s:.1f} s (before / after), "
        f"robust {100 * before.robust_accuracy:.1f}%"
    )
    click.echo(
        f"  reliable: {full.runtime_s:.1f} s ({members_seconds:.1f} s in its members, the rest in clean accuracy, "
        f"gradient counts and checks), robust {100 * full.robust_accuracy:.1f}%, flags {full.flags or 'none'}"
    )
    click.echo(f"  ratio {result['ratio']:.2f}x")


if __name__ == "__main__":
    main()
