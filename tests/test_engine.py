"""The one engine: an audit and a certificate run like an evaluation, so a killed run resumes with
the same numbers and two torchrun ranks give the single process's."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

# What may differ between two runs of one configuration: wall times, and where and when it ran.
TIMING = {"runtime_s", "seconds", "timestamp", "draws_per_second", "git_commit"}

AUDIT = ["audit", "fmnist_snn_direct", "--protocol", "pgd", "--attacks", "apgd", "-n", "48", "--batch-size", "8"]
CERTIFY = ["certify", "--model", "fmnist_rsc1_s0.2", "--n0", "10", "--draws", "60", "-n", "48", "--batch-size", "8"]
COMMANDS = pytest.mark.parametrize("arguments", [AUDIT, CERTIFY], ids=["audit", "certify"])


def without_timing(value):
    if isinstance(value, dict):
        return {key: without_timing(item) for key, item in value.items() if key not in TIMING}
    if isinstance(value, list):
        return [without_timing(item) for item in value]
    return value


def rsc_bench(*arguments: str, launcher: tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, "-m", *launcher, "robustbench_snn", *arguments, "-q", "--json"]


def single_process(arguments: list[str]) -> dict:
    finished = subprocess.run(rsc_bench(*arguments, "--no-store"), capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return json.loads(finished.stdout)


def stored_batches(folder) -> int:
    return (
        sum(len(path.read_text().splitlines()) for path in (folder / ".partial").glob("*.jsonl")) if (folder / ".partial").exists() else 0
    )


@pytest.mark.slow
@COMMANDS
def test_a_killed_run_resumes_from_its_last_finished_batch_with_the_same_numbers(tmp_path, arguments):
    command = rsc_bench(*arguments, "--results-dir", str(tmp_path))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and stored_batches(tmp_path) < 2 and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not list(tmp_path.rglob("fashion-mnist.jsonl")), "a killed run stores no row"

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming an interrupted run" in resumed.stderr
    assert stored_batches(tmp_path) == 0 and len(list(tmp_path.rglob("fashion-mnist.jsonl"))) == 1
    assert without_timing(json.loads(resumed.stdout)) == without_timing(single_process(arguments))


@pytest.mark.slow
@COMMANDS
def test_two_torchrun_ranks_give_the_single_process_numbers_and_one_row(tmp_path, arguments):
    launcher = ("torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m")
    command = rsc_bench(*arguments, "--results-dir", str(tmp_path), launcher=launcher)
    finished = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=900)
    assert finished.returncode == 0, finished.stderr[-3000:]
    sharded = json.loads(finished.stdout)  # only rank 0 prints
    assert without_timing(sharded) == without_timing(single_process(arguments))
    (stored,) = tmp_path.rglob("fashion-mnist.jsonl")
    assert len(stored.read_text().splitlines()) == 1


def test_a_sweep_holds_certification_cells_stored_once_as_certify_stores_them(tmp_path):
    from robustbench_snn.certify import certificate_identity, certify_images
    from robustbench_snn.registry import load_model
    from robustbench_snn.sweep import cells, load_grid, run_sweep

    settings = {"n0": 5, "draws": 20, "n_examples": 16, "batch_size": 8}
    path = tmp_path / "grid.yaml"
    path.write_text(
        json.dumps({"dataset": "fashion-mnist", "models": ["fmnist_rsc1_s0.2", "fmnist_ann"], "attacks": [], "certify": settings})
    )
    grid = load_grid(path)
    # sigma null certifies a model's own noise: the ANN has none, so it has no cell
    assert [cell.label() for cell in cells(grid)] == ["fmnist_rsc1_s0.2 certify seed 0"]
    (first,) = run_sweep(grid, results_dir=str(tmp_path / "out"))
    _, direct = certify_images(load_model("fmnist_rsc1_s0.2"), **settings, store=False, progress=False)
    assert first["status"] == "computed" and first["config_hash"] == direct["config_hash"]
    # the identity is known before certifying (benchmarks/reproduce_official.py checks stored rows with it)
    assert certificate_identity(load_model("fmnist_rsc1_s0.2"), **settings) == direct["config_hash"]
    stored = [json.loads(line) for line in (tmp_path / "out" / "fashion-mnist.jsonl").read_text().splitlines()]
    assert without_timing(stored) == [without_timing(direct)]
    (again,) = run_sweep(grid, results_dir=str(tmp_path / "out"))
    assert again["status"] == "reused" and len((tmp_path / "out" / "fashion-mnist.jsonl").read_text().splitlines()) == 1
