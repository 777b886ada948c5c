"""Property-based: the Python API's tensors and models, and the command line's options, give a
valid result or one clear error, never anything else (no traceback, no silently wrong number)."""

from __future__ import annotations

import math

import torch
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
