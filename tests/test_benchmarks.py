"""The benchmark scripts run and report what README's performance section quotes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_resnet19_benchmark_reports_throughput_against_the_flop_bound():
    command = [sys.executable, str(REPO / "benchmarks" / "resnet19_pgd.py"), "-n", "2", "--batch-size", "2", "--eot", "1", "--json"]
    result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    assert result["card"] == "rsc_resnet19" and result["timesteps"] == 4 and result["steps"] == 10
    # PGD-10 plus a 4-draw decision: 10 forwards and backwards to the input and 4 forwards of a
    # network of several GFLOP per image over T = 4 steps.
    assert 100 < result["gflops_per_image"] < 1000
    assert 0 < result["utilisation"] < 1.5
    assert result["images_per_second"] == pytest.approx(2 / result["seconds"])
