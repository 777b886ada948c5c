"""The benchmark scripts run and report what docs/scale.md's performance section quotes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from robustbench_snn.attacks import build_protocol

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


def test_energy_codings_benchmark_reports_each_codings_counts_on_the_same_weights():
    command = [sys.executable, str(REPO / "benchmarks" / "energy_codings.py"), "-n", "32", "--json"]
    counts = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)["counts"]
    assert counts["Poisson"]["macs"] == 0 and counts["Poisson"]["layers"][0]["input"] == "spikes"
    assert counts["RSC-II sigma 0.2"]["macs"] == 4 * counts["direct"]["macs"] == 4 * counts["RSC-I sigma 0.2"]["macs"]
    rates = [counts[f"RSC-I sigma {sigma}"]["firing_rate"] for sigma in ("0.1", "0.2", "0.3")]
    assert counts["direct"]["firing_rate"] < rates[0] < rates[1] < rates[2], "more input noise, more spikes"


def test_survivor_attacks_benchmark_counts_what_each_candidate_fools_among_the_survivors():
    only = ["--only", "expectation-pgd-100x4-cw", "--only", "mi-di-expectation+twin-50x4-cw"]
    command = [sys.executable, str(REPO / "benchmarks" / "survivor_attacks.py"), "--model", "fmnist_rsc1_s0.2", "-n", "8", "--no-compile"]
    result = json.loads(
        subprocess.run([*command, "--protocol", "none", *only, "--json"], check=True, capture_output=True, text=True).stdout
    )
    assert result["survivors"] > 0  # with no protocol, every correctly classified image
    for key in ("expectation-pgd-100x4-cw", "mi-di-expectation+twin-50x4-cw"):
        assert 0 <= result[key]["fooled"] <= result["survivors"]
    assert result["expectation-pgd-100x4-cw"]["fooled"] > 0


def test_reliable_cost_benchmark_reports_the_previous_version_autoattack_and_the_goals():
    command = [
        sys.executable,
        str(REPO / "benchmarks" / "reliable_cost.py"),
        "--model",
        "fmnist_ann",
        "-n",
        "8",
        "--no-compile",
        "--json",
    ]
    result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    current = build_protocol("reliable").version
    assert set(result["runs"]) == {f"reliable v{current}", f"reliable v{current - 1}", "autoattack standard"}
    assert set(result["goals"]) >= {
        "at_most_previous_version",
        "at_most_a_third_of_autoattack",
        "no_weaker_than_autoattack",
        "never_above_previous_version",
        "at_most_15_minutes_per_1000_images",
    }
    runs = result["runs"]
    assert runs[f"reliable v{current}"]["robust_accuracy"] <= runs[f"reliable v{current - 1}"]["robust_accuracy"]


@pytest.mark.slow
def test_every_official_row_made_under_component_versions_is_reused_by_the_current_code():
    """Refactors since a row was made leave its identity as it was, so a rerun reuses it; a row of
    an older protocol version, or made before identities were component versions, is reported."""
    command = [sys.executable, str(REPO / "benchmarks" / "reproduce_official.py"), "--json"]
    entries = json.loads(subprocess.run(command, check=True, capture_output=True, text=True, timeout=600).stdout)
    current = [entry for entry in entries if entry["component_identity"] and not entry["identity"].startswith("protocol now")]
    assert {entry["protocol"] for entry in current} >= {"reliable", "certify"}, "the ranking rows and the certificates are among them"
    assert [entry for entry in current if entry["identity"] != "same"] == []
