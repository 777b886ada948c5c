"""What `reliable` costs, against the goals of issue 40: at most the previous version's wall time,
at most a third of AutoAttack standard's on the deterministic models where AutoAttack is the
field's reference (while no weaker), and at most 15 minutes per 1,000 images on this machine.

All runs are whole evaluations on the same images and seed, in this process, after a short
warm-up that compiles every kernel either needs. The previous version is the preset as it was
committed (read from git, so this runs in a checkout), run by today's code; where the current
version decides a stochastic model's answers by another rule, the previous one runs a second time
under the current rule, and "never above" compares those two. AutoAttack standard
(the `autoattack` preset) runs on a deterministic model only: on a stochastic one it is not the
reference (`autoattack-rand` is, and is weaker than `reliable` by design).

    python benchmarks/reliable_cost.py --model fmnist_ann_pgdat -n 1000 [--previous 6] [--no-autoattack] [--json]
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import click
import torch
import yaml

from robustbench_snn import benchmark
from robustbench_snn.attacks import Protocol, build_protocol
from robustbench_snn.data import dataset_info
from robustbench_snn.errors import UserError
from robustbench_snn.models.interface import is_stochastic
from robustbench_snn.registry import load_model
from robustbench_snn.runtime import keep_freed_memory

ROOT = Path(__file__).resolve().parents[1]
PRESET = "attacks/reliable.yaml"
MINUTES_PER_1000 = 15


def preset_at_version(version: int) -> str:
    """The text of the `reliable` preset as committed at ``version`` (the newest commit that had it)."""
    commits = subprocess.run(
        ["git", "log", "--format=%H", "--", PRESET], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for commit in commits:
        text = subprocess.run(["git", "show", f"{commit}:{PRESET}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        if yaml.safe_load(text).get("version") == version:
            return text
    raise UserError(f"no commit of {PRESET} has version {version}")


def previous_protocol(version: int, folder: Path) -> Protocol:
    (folder / "reliable.yaml").write_text(preset_at_version(version))
    return build_protocol("reliable", directory=folder)


@click.command()
@click.option("--model", "name", default="fmnist_ann_pgdat", show_default=True)
@click.option("-n", "--n-examples", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True)
@click.option("--previous", type=int, help="The version to compare with [default: the current one's previous].")
@click.option("--autoattack/--no-autoattack", default=True, show_default=True, help="AutoAttack standard too (deterministic models).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--compile/--no-compile", "compile_lif", default=True, show_default=True, help="The compiled LIF kernel.")
@click.option("--json", "as_json", is_flag=True)
def main(name, n_examples, seed, previous, autoattack, device, compile_lif, as_json):
    keep_freed_memory()  # as the CLI does
    model = load_model(name, device=device, seed=seed).compile_lif(compile_lif)
    info = dataset_info(model.card.dataset)
    current = build_protocol("reliable").resolved(info)
    with tempfile.TemporaryDirectory() as folder:
        older = previous_protocol(previous or current.version - 1, Path(folder)).resolved(info)
    runs = {f"reliable v{current.version}": current, f"reliable v{older.version}": older}
    # A version that decides otherwise is compared for strength with the previous one decided its way
    # (a stochastic model's number depends on the rule); its time is still compared with the previous as committed.
    same_rule = older.model_copy(update={"eval_draws": current.eval_draws, "sequential": current.sequential})
    comparable = f"reliable v{older.version} decided as v{current.version}"
    if is_stochastic(model) and same_rule.rule() != older.rule():
        runs[comparable] = same_rule
    if autoattack and not is_stochastic(model):
        runs["autoattack standard"] = build_protocol("autoattack").resolved(info)

    def run(protocol: Protocol, n: int):
        return benchmark(model, attack=protocol, n_examples=n, seed=seed, device=device, progress=not as_json, compile_lif=compile_lif)

    run(current, 8)  # warm-up: compiles the kernels of every member and check
    records = {label: run(protocol, n_examples) for label, protocol in runs.items()}
    now, before = records[f"reliable v{current.version}"], records[f"reliable v{older.version}"]
    goals = {
        "at_most_previous_version": now.runtime_s <= before.runtime_s,
        "minutes_per_1000_images": round(now.runtime_s / 60 * 1000 / n_examples, 2),
        f"at_most_{MINUTES_PER_1000}_minutes_per_1000_images": now.runtime_s * 1000 / n_examples <= 60 * MINUTES_PER_1000,
        "never_above_previous_version": now.robust_accuracy <= records.get(comparable, before).robust_accuracy,
    }
    reference = records.get("autoattack standard")
    if reference is not None:
        goals["at_most_a_third_of_autoattack"] = now.runtime_s <= reference.runtime_s / 3
        goals["no_weaker_than_autoattack"] = now.robust_accuracy <= reference.robust_accuracy
    result = {
        "model": name,
        "device": device,
        "threads": torch.get_num_threads(),
        "compiled_lif": compile_lif,
        "n_examples": n_examples,
        "runs": {
            label: {
                "seconds": record.runtime_s,
                "robust_accuracy": record.robust_accuracy,
                "flags": record.flags,
                "member_seconds": {member: round(seconds, 1) for member, seconds in record.member_seconds.items()},
                "member_kills": record.member_kills,
            }
            for label, record in records.items()
        },
        "goals": goals,
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{name}, {n_examples} images, {device}, {result['threads']} threads, compiled LIF: {compile_lif}")
    for label, record in records.items():
        click.echo(f"  {label:22s} {record.runtime_s:8.1f} s  robust {100 * record.robust_accuracy:.1f}%  flags {record.flags or 'none'}")
    for goal, met in goals.items():
        click.echo(f"  {goal}: {met}")


if __name__ == "__main__":
    main()
