"""Scale-out: one evaluation sharded over torchrun ranks, and sweeps on Ray, give the numbers and
rows of a single process."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from robustbench_snn import benchmark
from robustbench_snn.errors import UserError
from robustbench_snn.registry import load_model
from robustbench_snn.sweep import load_grid, ray_available, run_sweep

# What may differ between two runs of one configuration: wall times, and where and when it ran.
TIMING = {"runtime_s", "member_seconds", "timestamp", "ranks", "gather_s"}


def torchrun(tmp_path, *arguments: str, background: bool = False):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "robustbench_snn",
        "evaluate",
        *arguments,
        "--results-dir",
        str(tmp_path / "results"),
        "-q",
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    if background:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment, start_new_session=True)
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900)


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (the ranks torchrun runs), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def stored_rows(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "results" / "fashion-mnist.jsonl").read_text().splitlines()]


def assert_same_numbers(sharded: dict, single: dict) -> None:
    assert {key: value for key, value in sharded.items() if key not in TIMING} == {
        key: value for key, value in single.as_dict().items() if key not in TIMING
    }


@pytest.mark.slow
def test_two_ranks_give_the_single_process_record_and_one_row(tmp_path):
    arguments = ["--model", "fmnist_ann", "--attack", "reliable", "-n", "160", "--batch-size", "32"]
    finished = torchrun(tmp_path, *arguments, "--json")
    assert finished.returncode == 0, finished.stderr[-3000:]
    sharded = json.loads(finished.stdout)  # only rank 0 prints
    single = benchmark(load_model("fmnist_ann"), attack="reliable", n_examples=160, batch_size=32)
    assert sharded["ranks"] == 2 and sharded["member_kills"] and sharded["flag_details"]["check_examples"] > 0
    assert_same_numbers(sharded, single)
    assert len(stored_rows(tmp_path)) == 1


@pytest.mark.slow
def test_a_sharded_run_whose_rank_is_killed_resumes_with_the_same_numbers(tmp_path):
    arguments = ["--model", "fmnist_snn_direct", "--attack", "pgd", "-n", "256", "--batch-size", "16"]
    partial = tmp_path / "results" / ".partial"
    run = torchrun(tmp_path, *arguments, background=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not any(path.stat().st_size for path in partial.glob("*.jsonl")):
        time.sleep(0.05)
    os.kill(children(run.pid)[-1], signal.SIGKILL)  # one rank dies; torchrun then stops the other
    run.wait(timeout=120)
    assert run.returncode != 0 and not (tmp_path / "results" / "fashion-mnist.jsonl").exists()
    done_before = len(next(partial.glob("*.jsonl")).read_text().splitlines())
    assert 0 < done_before < 16, "the run must be killed after some batches and before the last"

    resumed = torchrun(tmp_path, *arguments, "--json")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming an interrupted run" in resumed.stderr
    single = benchmark(load_model("fmnist_snn_direct"), attack="pgd", n_examples=256, batch_size=16)
    assert_same_numbers(json.loads(resumed.stdout), single)
    assert len(stored_rows(tmp_path)) == 1 and not list(partial.glob("*.jsonl"))


def write_grid(tmp_path, **fields) -> str:
    grid = {
        "name": "small",
        "dataset": "fashion-mnist",
        "models": ["fmnist_ann", "fmnist_snn_direct", "fmnist_ann_pgdat"],
        "attacks": ["pgd", "fgsm"],
        "n_examples": 48,
        **fields,
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return str(path)


def rows_by_identity(folder) -> dict[str, dict]:
    rows = [json.loads(line) for line in (folder / "fashion-mnist.jsonl").read_text().splitlines()]
    return {row["config_hash"]: {key: value for key, value in row.items() if key not in TIMING} for row in rows}


@pytest.mark.slow
def test_a_sweep_on_ray_stores_the_sequential_rows_and_a_rerun_does_nothing(tmp_path):
    from conftest import require

    require(ray_available(), "Ray (pip install 'robustbench-snn[cluster]')")
    grid = load_grid(write_grid(tmp_path))
    sequential = run_sweep(grid, results_dir=str(tmp_path / "sequential"))
    on_ray = run_sweep(grid, workers=2, results_dir=str(tmp_path / "ray"))
    assert len(on_ray) == 6 and all(cell["status"] == "computed" for cell in on_ray)
    assert rows_by_identity(tmp_path / "ray") == rows_by_identity(tmp_path / "sequential")
    assert [cell["config_hash"] for cell in on_ray] == [cell["config_hash"] for cell in sequential]
    again = run_sweep(grid, workers=2, results_dir=str(tmp_path / "ray"))
    assert all(cell["status"] == "reused" for cell in again)
    assert len(rows_by_identity(tmp_path / "ray")) == 6


def test_a_sweep_reruns_nothing_and_rejects_bad_grids(tmp_path):
    grid = load_grid(write_grid(tmp_path, models=["fmnist_ann"], attacks=["fgsm"], eps=["8/255", 0.1], n_examples=32))
    first = run_sweep(grid, results_dir=str(tmp_path / "out"))
    assert [cell["eps"] for cell in first] == [8 / 255, 0.1] and {cell["status"] for cell in first} == {"computed"}
    assert {cell["status"] for cell in run_sweep(grid, results_dir=str(tmp_path / "out"))} == {"reused"}
    with pytest.raises(UserError, match="did you mean pgd"):
        load_grid(write_grid(tmp_path, attacks=["pgdd"]))
    with pytest.raises(UserError, match="field 'seeds'"):
        load_grid(write_grid(tmp_path, seeds=[-1]))
    with pytest.raises(UserError, match="fmnist_nope"):
        run_sweep(load_grid(write_grid(tmp_path, models=["fmnist_nope"])), results_dir=str(tmp_path / "out"))
