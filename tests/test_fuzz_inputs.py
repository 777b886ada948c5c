"""Property-based: the Python API's tensors and models, and the command line's options, give a
valid result or one clear error, never anything else (no traceback, no silently wrong number)."""

from __future__ import annotations

import math

import pytest
import torch
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from torch import nn

from robustbench_snn import attack
from robustbench_snn.cli import main
from robustbench_snn.errors import UserError

DTYPES = [torch.float32, torch.float64, torch.float16, torch.uint8, torch.int64, torch.bool]
SHAPES = st.lists(st.integers(0, 30), min_size=0, max_size=5).map(tuple)
VALUES = st.sampled_from([0.0, 0.5, 1.0, -1.0, 2.0, 255.0, math.nan, math.inf])


class _Linear(nn.Module):
    """A small random model: flattens, one linear layer to ``classes`` outputs."""

    def __init__(self, classes: int, scale: float) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear, self.scale = nn.LazyLinear(classes), scale

    def forward(self, images):
        return self.linear(images.flatten(1).float()) * self.scale


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=SHAPES,
    dtype=st.sampled_from(DTYPES),
    value=VALUES,
    labels=st.lists(st.integers(-2, 12), max_size=6),
    classes=st.sampled_from([10, 9, 1]),
    scale=st.sampled_from([1.0, math.nan]),
)
@example(shape=(3, 1, 28, 28), dtype=torch.float32, value=0.5, labels=[0, 1, 2], classes=10, scale=1.0)
@example(shape=(3, 1, 28, 28), dtype=torch.float32, value=0.5, labels=[0, 1, 2], classes=9, scale=1.0)
@example(shape=(3, 1, 28, 28), dtype=torch.float32, value=math.nan, labels=[0, 1, 2], classes=10, scale=1.0)
@example(shape=(2, 1, 28, 28), dtype=torch.float32, value=0.5, labels=[0, 10], classes=10, scale=1.0)
def test_attack_on_any_tensors_and_model_gives_a_valid_result_or_a_user_error(shape, dtype, value, labels, classes, scale):
    images = torch.full(shape, value).to(dtype) if dtype is not torch.bool else torch.zeros(shape, dtype=dtype)
    label_tensor = torch.tensor(labels, dtype=torch.int64)
    try:
        result = attack(_Linear(classes, scale), images, label_tensor, dataset="fashion-mnist", attack="fgsm")
    except UserError:
        return
    # accepted: only real images and labels of the dataset, and a model with its class count
    assert images.dtype == torch.float32 and tuple(images.shape[1:]) == (1, 28, 28) and len(images) == len(labels) > 0
    assert classes == 10 and not math.isnan(scale) and 0 <= value <= 1 and all(0 <= label < 10 for label in labels)
    assert result.adversarial.shape == images.shape and 0 <= result.robust_accuracy <= 1


OPTION_VALUES = {
    "--eps": st.sampled_from(["0.1", "8/255", "-1", "nan", "inf", "1e400", "abc", "0", "1/0"]),
    "--steps": st.sampled_from(["1", "0", "-3", "2.5", "1000000000", "x"]),
    "-n": st.sampled_from(["4", "0", "-1", "100000", "a"]),
    "--seed": st.sampled_from(["0", "-1", str(2**63), "1e3"]),
    "--eot": st.sampled_from(["1", "0", "1000000000"]),
    "--norm": st.sampled_from(["Linf", "L2", "L1", ""]),
    "--attack": st.sampled_from(["none", "fgsm", "nope", ""]),
    "--batch-size": st.sampled_from(["4", "0", "-5"]),
    "--surrogate-alpha": st.sampled_from(["2", "0", "-1", "nan"]),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(chosen=st.dictionaries(st.sampled_from(sorted(OPTION_VALUES)), st.just(None), max_size=4), data=st.data())
def test_evaluate_with_any_option_values_is_a_result_or_one_clear_error(chosen, data, tmp_path):
    arguments = ["evaluate", "--model", "fmnist_ann", "--results-dir", str(tmp_path), "-q", "--json"]
    for option in chosen:
        arguments += [option, data.draw(OPTION_VALUES[option])]
    if "-n" not in chosen:
        arguments += ["-n", "4"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output and (result.exception is None or isinstance(result.exception, SystemExit))
    if result.exit_code == 2:
        assert result.output.count("Error:") == 1


# Values for each option of the other commands: valid ones small enough to run in seconds.
COMMAND_OPTIONS = {
    "certify": (
        ["certify", "--model", "fmnist_rsc1_s0.2", "--n0", "10", "--draws", "20", "-n", "2"],
        {
            "--sigma": st.sampled_from(["0.1", "0", "-1", "nan", "inf", "x"]),
            "--n0": st.sampled_from(["5", "0", "-2", "1e9", "x"]),
            "--draws": st.sampled_from(["20", "0", "-5", "2.5"]),
            "--alpha": st.sampled_from(["0.001", "0", "0.5", "1", "nan", "-0.1"]),
            "-n": st.sampled_from(["2", "0", "-1", "1000000"]),
            "--batch-size": st.sampled_from(["4", "0", "-1"]),
            "--seed": st.sampled_from(["0", "-1", str(2**63)]),
        },
    ),
    "energy": (
        ["energy", "--model", "fmnist_rsc1_s0.2", "-n", "4"],
        {
            "--attack": st.sampled_from(["fgsm", "none", "nope", ""]),
            "--eps": st.sampled_from(["0.1", "8/255", "-1", "nan", "1/0", "x"]),
            "-n": st.sampled_from(["4", "0", "-3", "1000000", "x"]),
            "--batch-size": st.sampled_from(["4", "0"]),
            "--seed": st.sampled_from(["0", "-1"]),
        },
    ),
    "audit": (
        ["audit", "fmnist_ann", "--protocol", "fgsm", "--attacks", "fgsm", "-n", "4"],
        {
            "--protocol": st.sampled_from(["fgsm", "none", "nope", ""]),
            "--attacks": st.sampled_from(["fgsm", "nope", ""]),
            "-n": st.sampled_from(["4", "0", "-1", "1000000"]),
            "--batch-size": st.sampled_from(["4", "0"]),
            "--seed": st.sampled_from(["0", "-5"]),
        },
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(COMMAND_OPTIONS))
def test_certify_energy_and_audit_with_any_option_values_are_a_result_or_one_clear_error(command, tmp_path):
    base, options = COMMAND_OPTIONS[command]

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(chosen=st.dictionaries(st.sampled_from(sorted(options)), st.just(None), max_size=3), data=st.data())
    def run(chosen, data):
        arguments = [*base, "-q"] + (["--results-dir", str(tmp_path)] if command != "energy" else [])
        for option in chosen:
            arguments += [option, data.draw(options[option])]
        result = CliRunner().invoke(main, arguments)
        assert result.exit_code in (0, 2, 3), result.output
        assert "Traceback" not in result.output and (result.exception is None or isinstance(result.exception, SystemExit))
        if result.exit_code != 0:
            assert result.output.count("Error:") == 1, result.output

    run()


SWEEP_FIELDS = {
    "models": st.sampled_from([["fmnist_ann"], [], ["nope"], "fmnist_ann", [1], None]),
    "attacks": st.sampled_from([["fgsm"], [], ["nope"], [{"attack": "pgd"}], "fgsm"]),
    "eps": st.sampled_from([[0.1], [], [-1], ["x"], [1e400], 0.1]),
    "seeds": st.sampled_from([[0], [], [-1], [0.5], ["a"]]),
    "n_examples": st.sampled_from([4, 0, -1, 10**12, "x", None]),
    "dataset": st.sampled_from(["fashion-mnist", "nope", 3]),
    "name": st.sampled_from(["grid", "", 7]),
    "extra": st.sampled_from([1, "x"]),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    document=st.dictionaries(st.sampled_from(sorted(SWEEP_FIELDS)), st.just(None), max_size=len(SWEEP_FIELDS)),
    workers=st.sampled_from([None, "1", "0", "-1", "5000", "x"]),
    data=st.data(),
)
def test_any_sweep_file_and_workers_dry_run_to_a_cell_list_or_one_clear_error(document, workers, data, tmp_path):
    values = {field: data.draw(SWEEP_FIELDS[field]) for field in document}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(values))
    arguments = ["sweep", str(path), "--dry-run", "--json", "--results-dir", str(tmp_path / "rows")]
    result = CliRunner().invoke(main, arguments + (["--workers", workers] if workers is not None else []))
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output and (result.exception is None or isinstance(result.exception, SystemExit))
    if result.exit_code == 2:
        assert result.output.count("Error:") == 1, result.output
    assert not (tmp_path / "rows").exists(), "a dry run stores nothing"
