"""Options and types shared by several commands, declared once."""

from __future__ import annotations

import functools
import importlib
import json
import math
import types
import typing

import annotated_types
import click
from pydantic.fields import FieldInfo

from robustbench_snn.attack_fields import OVERRIDABLE
from robustbench_snn.errors import UserError


def print_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


class EpsType(click.ParamType):
    """An eps as a number or a fraction such as 8/255."""

    name = "EPS"

    def convert(self, value, param, ctx):
        from robustbench_snn.attacks import parse_eps

        if isinstance(value, float):
            return value
        try:
            return parse_eps(value)
        except UserError as error:
            self.fail(str(error), param, ctx)


class Folder(click.Path):
    """A folder path that is not the empty string (which would mean the current folder unasked)."""

    def __init__(self) -> None:
        super().__init__(file_okay=False)

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail("must name a folder, not be empty", param, ctx)
        return super().convert(value, param, ctx)


class FiniteFloat(click.FloatRange):
    """A float in a range that is finite (click's ranges let nan and inf through an open bound)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class RegistryChoice(click.Choice):
    """A choice among the names of one of the package's registries (``module.registry``), read
    only when a value is checked or the names are listed (`rsc-bench names`), so that loading the
    command line and every ``--help`` does not import the registries' torch code: help shows the
    ``kind``, a wrong name lists the valid ones. Names are sorted unless the registry's order
    means something (``ordered``)."""

    def __init__(self, module: str, registry: str, kind: str, ordered: bool = False) -> None:
        self._where = (module, registry)
        self._ordered = ordered
        self.kind = kind
        self.case_sensitive = True
        REGISTRY_CHOICES[kind] = self

    @functools.cached_property
    def choices(self) -> tuple[str, ...]:
        names = getattr(importlib.import_module(self._where[0]), self._where[1])
        return tuple(names if self._ordered else sorted(names))

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return self.kind.upper()

    def summaries(self) -> dict[str, str]:
        """What each name does, where the registry's entries say it in a ``summary``."""
        entries = getattr(importlib.import_module(self._where[0]), self._where[1])
        if not hasattr(entries, "values"):
            return {}
        return {name: entries[name].summary for name in self.choices if isinstance(getattr(entries[name], "summary", None), str)}


# Every registry the command line offers a choice of, by kind; `rsc-bench names` lists them.
REGISTRY_CHOICES: dict[str, RegistryChoice] = {}

DATASETS = RegistryChoice("robustbench_snn.data", "DATASETS", "dataset")
GRADIENT_MODES = RegistryChoice("robustbench_snn.models", "GRADIENT_MODES", "grad", ordered=True)
SURROGATES = RegistryChoice("robustbench_snn.models", "SURROGATES", "surrogate")
ESTIMATORS = RegistryChoice("robustbench_snn.models.estimators", "ESTIMATORS", "estimator", ordered=True)
ENCODINGS = RegistryChoice("robustbench_snn.models.encoders", "ENCODERS", "encoding")


def _bounds(field: FieldInfo) -> dict:
    """A field's numeric bounds as click range arguments."""
    found: dict = {}
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Ge):
            found["min"] = bound.ge
        if isinstance(bound, annotated_types.Gt):
            found.update(min=bound.gt, min_open=True)
        if isinstance(bound, annotated_types.Le):
            found["max"] = bound.le
    return found


def _option_type(field: FieldInfo) -> click.ParamType | None:
    """The click type of an attack field: eps-like, a registry's names, a choice, a bounded number or text."""
    kind = (field.json_schema_extra or {}).get("cli")
    if kind == "eps":
        return EpsType()
    if kind is not None:
        return REGISTRY_CHOICES[kind]
    value_type = field.annotation
    if typing.get_origin(value_type) in (typing.Union, types.UnionType):  # an optional field: its value's type
        (value_type,) = [argument for argument in typing.get_args(value_type) if argument is not type(None)]
    if typing.get_origin(value_type) is typing.Literal:
        return click.Choice(typing.get_args(value_type))
    if value_type is int:
        return click.IntRange(**{key: value for key, value in _bounds(field).items() if key != "min_open"})
    if value_type is float:
        return FiniteFloat(**_bounds(field))
    return None


def field_option(name: str, field: FieldInfo, help: str | None = None) -> tuple[list[str], dict]:
    """The declarations and settings of the command-line option of schema field ``name``
    (``--name-with-dashes``, typed and bounded by the field; unset, it is None and the schema's
    default applies), for ``click.option(*decls, **settings)`` or ``click.Option(decls, **settings)``."""
    flag = "--" + name.replace("_", "-")
    settings = {"default": None, "help": field.description if help is None else help}
    if field.annotation is bool and field.default:
        return [f"{flag}/--no-{name.replace('_', '-')}", name], settings
    if field.annotation is bool:
        return [flag, name], {**settings, "is_flag": True}
    return [flag, name], {**settings, "type": _option_type(field)}


class GeneratedOptions(click.Command):
    """A command with options made from schemas when first needed, for parsing or for help
    (``generate()`` returns them; they go after the option named ``after``), so that declaring a
    parameter in a registered schema is all it takes to offer it, and loading the command line
    reads no schema."""

    def __init__(self, *args, generate, after: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._generate, self._after = generate, after

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if self._generate is not None:
            generate, self._generate = self._generate, None
            position = next(index for index, param in enumerate(self.params) if param.name == self._after) + 1
            self.params[position:position] = generate()
        return super().get_params(ctx)


def attack_option(name: str):
    """The command-line option that overrides attack field ``name`` (`robustbench_snn.attack_fields`);
    unset, it leaves the preset's value."""
    decls, settings = field_option(name, OVERRIDABLE[name])
    return click.option(*decls, **settings)


def attack_options(command):
    """Every attack and protocol field as an option (``--steps``, ``--grad``, ...), in the schema's order."""
    for name in reversed(OVERRIDABLE):
        command = attack_option(name)(command)
    return command


seed = click.option(
    "--seed",
    default=0,
    show_default=True,
    type=click.IntRange(0, 2**63 - 1),
    help="Seed of the model's draws (coding, noisy neurons), attack randomness and training; 0 is the standard seed of official rows.",
)
storing_results = click.option(
    "--results-dir",
    type=Folder(),
    help="Where rows are stored [default: $RSC_BENCH_RESULTS, else your data folder; the official store only when named].",
)
site_results = click.option(
    "--results-dir",
    type=Folder(),
    help="Build from this folder's rows, e.g. your own runs' (all of them, marked yours) "
    "[default: $RSC_BENCH_RESULTS, else the official results].",
)
reading_results = click.option(
    "--results-dir",
    type=Folder(),
    help="Read rows from this folder only, e.g. your own runs' [default: the official results ($RSC_BENCH_RESULTS "
    "replaces them) and your own runs' folder].",
)
data_dir = click.option(
    "--data-dir",
    type=Folder(),
    help="Data root [default: $RSC_BENCH_DATA, else the user cache; Fashion-MNIST's test split ships inside the package].",
)
device = click.option("--device", default="cpu", show_default=True, help="torch device: cpu, cuda or cuda:N.")
as_json = click.option("--json", "as_json", is_flag=True, help="Print one machine-readable JSON document instead of text.")
quiet = click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
checkpoint = click.option(
    "--checkpoint", type=click.Path(dir_okay=False), help="Your own weights for the model's architecture (.safetensors, .pt, .pth)."
)
no_store = click.option("--no-store", is_flag=True, help="Do not store the result.")
model = click.option("--model", "model_name", required=True, help="Registered model name, or a model card file (.yaml).")
batch_size = click.option("--batch-size", default=128, show_default=True, type=click.IntRange(min=1), help="Images per batch.")


def table_filters(command):
    """The options that select stored rows: dataset, protocol, eps and the folder read."""
    for option in reversed(
        [
            click.option("--dataset", type=DATASETS, help="Only this dataset."),
            click.option("--protocol", help="Only this protocol (e.g. pgd, reliable)."),
            click.option("--eps", type=EpsType(), help="Only this eps, e.g. 0.1 or 8/255."),
            reading_results,
        ]
    ):
        command = option(command)
    return command
