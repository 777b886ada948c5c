"""Stored results: reuse of identical configurations, concurrent appends, resuming a killed run."""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from robustbench_snn import benchmark
from robustbench_snn.registry import load_model
from robustbench_snn.store import append_row, config_hash, load_rows, results_dir


def test_a_rerun_with_the_same_configuration_reuses_the_stored_row(tmp_path):
    model = load_model("fmnist_ann")
    options = dict(attack="pgd", n_examples=32, batch_size=16, seed=0, store=True, results_dir=tmp_path, overrides={"steps": 3})
    first = benchmark(model, **options)
    again = benchmark(model, **options)
    assert not first.reused and again.reused
    assert again.robust_accuracy == first.robust_accuracy and again.config_hash == first.config_hash
    assert len(load_rows("fashion-mnist", tmp_path)) == 1
    different = benchmark(model, **{**options, "overrides": {"steps": 4}})
    assert different.config_hash != first.config_hash
    forced = benchmark(model, **{**options, "force": True})
    assert not forced.reused
    rows = load_rows("fashion-mnist", tmp_path)
    assert len(rows) == 3
    assert {
        "model",
        "dataset",
        "protocol",
        "eps",
        "grad",
        "seed",
        "clean_accuracy",
        "robust_accuracy",
        "n_examples",
        "flags",
        "params",
        "runtime_s",
        "versions",
        "checkpoint_sha256",
        "git_commit",
    } <= set(rows.columns)


def _append_many(directory: str, writer: int, count: int) -> None:
    for number in range(count):
        append_row(
            {
                "model": "m",
                "dataset": "fashion-mnist",
                "protocol": "pgd",
                "seed": 0,
                "n_examples": 1,
                "timestamp": "t",
                "writer": writer,
                "number": number,
                "padding": "x" * 5000,
            },
            directory,
        )


def test_two_processes_appending_at_once_lose_nothing(tmp_path):
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_append_many, args=(str(tmp_path), writer, 150)) for writer in range(2)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)
        assert process.exitcode == 0
    rows = load_rows("fashion-mnist", tmp_path)
    assert len(rows) == 300
    assert rows.groupby("writer")["number"].apply(lambda numbers: sorted(numbers) == list(range(150))).all()


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_finished_batch_with_the_same_result(tmp_path):
    arguments = [
        "evaluate",
        "--model",
        "fmnist_rsc1_s0.2",
        "--attack",
        "pgd",
        "-n",
        "48",
        "--batch-size",
        "8",
        "--steps",
        "5",
        "--eot",
        "4",
        "--seed",
        "1",
        "--results-dir",
        str(tmp_path),
        "-q",
        "--json",
    ]
    command = [sys.executable, "-m", "robustbench_snn", "-v", *arguments]
    partial_dir = results_dir(tmp_path) / ".partial"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        finished = sum(len(path.read_text().splitlines()) for path in partial_dir.glob("*.jsonl")) if partial_dir.exists() else 0
        if finished >= 2 or process.poll() is not None:
            break
        time.sleep(0.1)
    assert process.poll() is None, "the run finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not load_rows("fashion-mnist", tmp_path).shape[0]

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    record = json.loads(resumed.stdout)
    assert not list(partial_dir.glob("*.jsonl"))

    uninterrupted = subprocess.run(
        [sys.executable, "-m", "robustbench_snn", *arguments, "--no-store"], capture_output=True, text=True, timeout=600
    )
    reference = json.loads(uninterrupted.stdout)
    assert (record["clean_accuracy"], record["robust_accuracy"]) == (reference["clean_accuracy"], reference["robust_accuracy"])
    assert record["config_hash"] == reference["config_hash"]


def test_per_sample_outcomes_are_saved_on_request(tmp_path):
    model = load_model("fmnist_ann")
    record = benchmark(
        model,
        attack="pgd",
        n_examples=20,
        batch_size=8,
        seed=0,
        store=True,
        results_dir=tmp_path,
        save_samples=True,
        overrides={"steps": 3},
    )
    samples = pd.read_csv(tmp_path / "samples" / f"{record.config_hash}.csv")
    assert len(samples) == 20 and list(samples["index"]) == list(range(20))
    assert samples["robust"].mean() == pytest.approx(record.robust_accuracy)
    assert samples["clean_correct"].mean() == pytest.approx(record.clean_accuracy)
    assert set(samples.loc[samples["clean_correct"] & ~samples["robust"], "fooled_by"]) <= {"pgd-3"}
