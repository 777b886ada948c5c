"""Property-based: any card or preset document loads, or fails with one clear error naming its file."""

import time

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robustbench_snn.attacks import build_protocol
from robustbench_snn.errors import UserError
from robustbench_snn.registry import read_card

CARD_KEYS = [
    "name",
    "dataset",
    "description",
    "architecture",
    "kind",
    "encoding",
    "timesteps",
    "neuron",
    "training",
    "checkpoint",
    "claimed",
    "reference",
    "license",
    "args",
    "sigma",
    "variant",
    "tau",
    "path",
    "url",
    "sha256",
]
PRESET_KEYS = [
    "name",
    "description",
    "members",
    "attack",
    "norm",
    "eps",
    "steps",
    "step_size",
    "grad",
    "surrogate",
    "surrogate_alpha",
    "eot",
    "eval_draws",
    "checks",
    "adaptive",
    "loss",
    "bpda",
    "queries",
    "source",
    "version",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["pgd", "atan", "rsc", "snn", "fashion-mnist", "small_cnn", "Linf", "I", "8/255"]),
)


def documents(keys):
    values = st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(keys), inner, max_size=5)),
        max_leaves=20,
    )
    return st.one_of(values, st.dictionaries(st.sampled_from(keys), values, max_size=len(keys)))


def _loads_or_names_its_file(path, load):
    started = time.monotonic()
    try:
        load()
    except UserError as error:
        assert str(error).startswith(str(path)) or str(path) in str(error), str(error)
    assert time.monotonic() - started < 2


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=documents(CARD_KEYS))
def test_any_card_document_loads_or_is_one_clear_error(tmp_path, document):
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(document))
    _loads_or_names_its_file(path, lambda: read_card(path))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=documents(PRESET_KEYS))
def test_any_preset_document_loads_or_is_one_clear_error(tmp_path, document):
    path = tmp_path / "fuzzed.yaml"
    path.write_text(yaml.safe_dump(document))
    _loads_or_names_its_file(path, lambda: build_protocol("fuzzed", directory=tmp_path))
