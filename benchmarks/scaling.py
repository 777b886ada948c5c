"""How one evaluation scales over torchrun ranks, and a sweep over Ray workers, on this machine.

One evaluation: the same `rsc-bench evaluate` run with 1 rank (a plain process) and with N ranks
(torchrun, gloo on CPU or NCCL with one GPU per rank), each in a fresh results folder, timed from
launch to exit (process start, model load and gathering included) and by the row's own runtime;
the row reports the seconds rank 0 spent gathering. The records must be equal in every number.
One sweep: a grid of cells run by `rsc-bench sweep` with 1 and N Ray workers (cells per minute,
Ray's start included). The 1-rank and 1-worker runs come first and last, averaged, so that a
drift in machine speed cancels.

    python benchmarks/scaling.py --ranks 2 [--model fmnist_snn_direct] [-n 1000] [--device cuda] [--json]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import yaml

TIMING = {"runtime_s", "member_seconds", "timestamp", "ranks", "gather_s"}


def evaluate(ranks: int, arguments: list[str], device: str, threads: int) -> tuple[float, dict]:
    """Wall seconds and the record of one evaluation on ``ranks`` processes."""
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)] if ranks > 1 else [sys.executable]
    )
    with tempfile.TemporaryDirectory() as folder:
        command = [*launcher, "-m", "robustbench_snn", "evaluate", *arguments, "--device", device, "--results-dir", folder, "--json", "-q"]
        started = time.perf_counter()
        finished = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        return time.perf_counter() - started, json.loads(finished.stdout)


def sweep(workers: int, grid: Path) -> float:
    """Wall seconds of a sweep on ``workers`` Ray workers (1: in one process), in a fresh results folder."""
    with tempfile.TemporaryDirectory() as folder:
        command = [
            sys.executable,
            "-m",
            "robustbench_snn",
            "sweep",
            str(grid),
            "--workers",
            str(workers),
            "--results-dir",
            folder,
            "--json",
        ]
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        return time.perf_counter() - started


@click.command()
@click.option("--ranks", default=2, show_default=True, type=click.IntRange(min=2), help="Ranks and Ray workers to compare with one.")
@click.option("--model", default="fmnist_snn_direct", show_default=True)
@click.option("--attack", default="pgd", show_default=True)
@click.option("-n", "--n-examples", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--device", default="cpu", show_default=True)
@click.option(
    "--threads-per-rank",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="CPU threads of each rank (and of the one-rank run): scaling per added core, as per added GPU.",
)
@click.option("--sweep-models", default="fmnist_snn_direct,fmnist_snn_pgdat", show_default=True)
@click.option("--sweep-seeds", default=2, show_default=True, type=click.IntRange(min=1), help="Seeds 0..K-1 of each cell.")
@click.option("--sweep-n", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True)
def main(ranks, model, attack, n_examples, batch_size, device, threads_per_rank, sweep_models, sweep_seeds, sweep_n, as_json):
    arguments = ["--model", model, "--attack", attack, "-n", str(n_examples), "--batch-size", str(batch_size)]
    first, single = evaluate(1, arguments, device, threads_per_rank)
    sharded_wall, sharded = evaluate(ranks, arguments, device, threads_per_rank)
    last, _ = evaluate(1, arguments, device, threads_per_rank)
    equal = {k: v for k, v in single.items() if k not in TIMING} == {k: v for k, v in sharded.items() if k not in TIMING}
    single_wall = (first + last) / 2

    with tempfile.TemporaryDirectory() as folder:
        grid = Path(folder) / "grid.yaml"
        models = sweep_models.split(",")
        seeds = list(range(sweep_seeds))
        grid.write_text(
            yaml.safe_dump({"name": "scaling", "models": models, "attacks": ["pgd", "fgsm"], "seeds": seeds, "n_examples": sweep_n})
        )
        cells = len(models) * 2 * len(seeds)
        one_worker_first = sweep(1, grid)
        on_workers = sweep(ranks, grid)
        one_worker_last = sweep(1, grid)
        alone = (one_worker_first + one_worker_last) / 2

    report = {
        "machine": f"{os.cpu_count()} CPU cores, device {device}, {threads_per_rank} thread(s) per rank and per worker",
        "evaluation": f"{model} {attack} -n {n_examples} --batch-size {batch_size}",
        "ranks": ranks,
        "one_rank_wall_s": round(single_wall, 2),
        "sharded_wall_s": round(sharded_wall, 2),
        "speedup_wall": round(single_wall / sharded_wall, 2),
        "one_rank_runtime_s": single["runtime_s"],
        "sharded_runtime_s": sharded["runtime_s"],
        "speedup_runtime": round(single["runtime_s"] / sharded["runtime_s"], 2),
        "gather_s": sharded["gather_s"],
        "records_equal": equal,
        "sweep_cells": cells,
        "sweep_one_worker_s": round(alone, 2),
        "sweep_workers_s": round(on_workers, 2),
        "sweep_cells_per_min_one_worker": round(60 * cells / alone, 1),
        "sweep_cells_per_min_workers": round(60 * cells / on_workers, 1),
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            click.echo(f"{key:<32} {value}")


if __name__ == "__main__":
    main()
