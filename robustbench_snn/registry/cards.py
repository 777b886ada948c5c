"""Model cards: the YAML schema of a registry entry, validated with errors naming file and field.

A card is data only: the architecture is a name looked up in the package's builder registry,
so a card can never run code.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from robustbench_snn.config import OmittingUnset, describe, load_yaml
from robustbench_snn.config import Strict as _Strict
from robustbench_snn.data import DATASETS
from robustbench_snn.defences import NEURONS, neuron_type_of
from robustbench_snn.errors import CardError, UserError, did_you_mean, unknown_name
from robustbench_snn.models import ARCHITECTURES, ModelSpec, NeuronConfig
from robustbench_snn.models.encoders import ENCODERS, Encoder
from robustbench_snn.models.gradients import SurrogateName
from robustbench_snn.shipped import search_path


class ArchitectureField(_Strict):
    name: str
    args: dict = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        if name not in ARCHITECTURES:
            raise ValueError(unknown_name("architecture", name, sorted(ARCHITECTURES)))
        return name


class EncodingField(BaseModel):
    """A registered encoder's name and its parameters, side by side (``{name: rsc, sigma: 0.2, variant: I}``),
    the parameters checked by the encoder's own schema (a parameter given as null counts as not given)."""

    model_config = ConfigDict(extra="allow")
    name: str
    _params: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _registered(self) -> "EncodingField":
        if self.name not in ENCODERS:
            raise ValueError(unknown_name("encoding", self.name, sorted(ENCODERS)))
        given = {key: value for key, value in (self.model_extra or {}).items() if value is not None}
        try:
            self._params = ENCODERS[self.name].Parameters.model_validate(given).model_dump()
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in error.errors())
            raise ValueError(f"{self.name} encoding: {problems}") from None
        return self

    @property
    def encoder(self) -> type[Encoder]:
        return ENCODERS[self.name]

    def params(self) -> dict:
        """The parameters as the encoder's schema validated them."""
        return dict(self._params)

    def label(self) -> str:
        return self.encoder.label(self.params())

    def family(self) -> str:
        return self.encoder.family(self.params())

    def noise_level(self) -> float | None:
        return self.encoder.noise_level(self.params())


class NeuronField(OmittingUnset):
    """The LIF's parameters, and beside them the neuron type's own (``threshold_tau: 1.5``), checked
    by the type's schema (`robustbench_snn.defences.NEURONS`; a parameter given as null counts as not
    given); ``type`` is needed only where the parameters do not say it."""

    model_config = ConfigDict(extra="allow")
    omitted_while_none = ("type",)
    tau: float = Field(gt=1, le=1e6, allow_inf_nan=False)
    v_threshold: float = Field(gt=0, le=1e6, allow_inf_nan=False)
    v_reset: float | None = Field(allow_inf_nan=False, ge=-1e6, le=1e6)
    surrogate: SurrogateName
    surrogate_alpha: float = Field(gt=0, le=1e3, allow_inf_nan=False)
    detach_reset: bool
    type: str | None = None
    _params: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _registered(self) -> "NeuronField":
        given = {key: value for key, value in (self.model_extra or {}).items() if value is not None}
        try:
            kind = neuron_type_of(given, self.type)
            self._params = NEURONS[kind].parameters_of(given)
        except UserError as error:
            raise ValueError(str(error)) from None
        return self

    def config(self) -> NeuronConfig:
        """The neurons as a model is built with them."""
        lif = {name: getattr(self, name) for name in ("tau", "v_threshold", "v_reset", "surrogate", "surrogate_alpha", "detach_reset")}
        return NeuronConfig(**lif, type=self.type, params=self._params)


class TrainingField(_Strict, OmittingUnset):
    recipe: str
    command: str
    seed: int | None = None
    hyperparameters: dict = Field(default_factory=dict)
    # What the checkpoint's bits depend on beyond the command (library versions, device, CPU threads).
    environment: dict = Field(default_factory=dict)
    # The training's wall time in seconds on that environment (not the card's evaluation); absent
    # from cards written before `rsc-bench train` recorded it.
    seconds: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    omitted_while_none = ("seconds",)


class CheckpointField(_Strict):
    path: str | None = None
    url: str | None = None
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(gt=0, le=1 << 40, strict=True)

    @model_validator(mode="after")
    def _one_location(self) -> "CheckpointField":
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of path (relative to the card) or url")
        if self.path is not None:
            parts = PurePosixPath(self.path.replace("\\", "/")).parts
            if not parts or self.path.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts:
                raise ValueError(f"path {self.path!r} must be a file name relative to the card's folder, inside it")
        return self


class ClaimedAccuracyField(_Strict):
    clean_accuracy: float = Field(ge=0, le=1)
    n_examples: int = Field(gt=0)
    seed: int
    command: str


class ReportedField(_Strict):
    """What a published defence's paper reports under its own evaluation, and where it says so (the
    fidelity check, `robustbench_snn.fidelity`, compares our copy with it)."""

    source: str = Field(min_length=1, description="where: the paper's version, table and row (or abstract)")
    dataset: str = Field(description="the dataset of the number, as registered here (fashion-mnist, cifar10, ...)")
    eps: float = Field(gt=0, le=1, allow_inf_nan=False, description="the Linf radius, in pixel units of [0, 1]")
    attack: str = Field(min_length=1, description="the paper's evaluation in words (attack, steps, step, start, gradient)")
    training: str | None = Field(default=None, description="how the paper trains the defence (its network, epochs, radius)")
    # None where the paper's evaluation and training could be read (its code) but not its number: the
    # card then records the settings, and the copy has no verdict ("not measured").
    robust_accuracy: float | None = Field(default=None, ge=0, le=1)
    clean_accuracy: float | None = Field(default=None, ge=0, le=1)
    baseline_robust_accuracy: float | None = Field(default=None, ge=0, le=1, description="its undefended SNN, same evaluation")
    baseline_model: str | None = Field(default=None, description="our undefended SNN to compare the gain with (a registered name)")
    differences: str = Field(min_length=1, description="what differs between our copy and the paper's")

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        if name not in DATASETS:
            raise ValueError(unknown_name("dataset", name, DATASETS))
        return name


class ReferenceField(_Strict, OmittingUnset):
    paper: str
    url: str | None = None
    # A published defence's card: the shipped attack preset that reproduces the paper's own
    # evaluation, shown beside `reliable` (the leaderboard's "paper's protocol" and "overstated by").
    protocol: str | None = None
    reported: ReportedField | None = None
    omitted_while_none = ("reported",)

    @model_validator(mode="after")
    def _reported_with_its_protocol(self) -> "ReferenceField":
        if self.reported is not None and self.protocol is None:
            raise ValueError("a paper's reported number needs the preset of its evaluation (protocol)")
        return self

    @field_validator("protocol")
    @classmethod
    def _shipped_preset(cls, name: str | None) -> str | None:
        from robustbench_snn.attacks.protocol import official_presets

        if name is not None and name not in official_presets():
            raise ValueError(unknown_name("shipped attack preset", name, official_presets()))
        return name


class ModelCard(_Strict):
    """One registry entry. ``checkpoint`` and ``claimed`` are null for recipes not yet trained."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=100)
    dataset: str
    description: str = ""
    architecture: ArchitectureField
    kind: Literal["ann", "snn"]
    encoding: EncodingField
    timesteps: int = Field(ge=1, le=1024, strict=True)
    neuron: NeuronField | None
    training: TrainingField
    checkpoint: CheckpointField | None
    claimed: ClaimedAccuracyField | None
    reference: ReferenceField
    license: str

    _path: Path | None = PrivateAttr(default=None)

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        if name not in DATASETS:
            raise ValueError(unknown_name("dataset", name, DATASETS))
        return name

    @model_validator(mode="after")
    def _consistent(self) -> "ModelCard":
        if self.kind == "snn" and self.neuron is None:
            raise ValueError("an snn card needs a neuron section")
        if self.kind == "ann" and (self.neuron is not None or self.timesteps != 1):
            raise ValueError("an ann card has timesteps 1 and neuron null")
        if self.claimed is not None and self.checkpoint is None:
            raise ValueError("a claimed accuracy needs a checkpoint")
        return self

    @property
    def path(self) -> Path | None:
        """The file the card was read from."""
        return self._path

    @property
    def stochastic(self) -> bool:
        """Whether the model's forwards on one input may differ: its coding's noise or its neurons' (as their layer type says)."""
        return self.encoding.encoder.stochastic or (self.kind == "snn" and self.spec().neuron.layer_class().stochastic)

    def spec(self) -> ModelSpec:
        neuron = self.neuron.config() if self.neuron else NeuronConfig()
        return ModelSpec(
            architecture=self.architecture.name,
            kind=self.kind,
            encoding=self.encoding.name,
            encoding_params=self.encoding.params(),
            timesteps=self.timesteps,
            neuron=neuron,
            architecture_args=self.architecture.args,
        )

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def parse_card(data: object, source: str) -> ModelCard:
    """Validate card data read from ``source`` (a file name used in error messages)."""
    if not isinstance(data, dict):
        raise CardError(f"{source}: a model card must be a YAML mapping, got {type(data).__name__}")
    try:
        return ModelCard.model_validate(data)
    except ValidationError as error:
        raise CardError(f"{source}: invalid model card\n{describe(error, '(card)')}") from None


def read_card(path: str | os.PathLike) -> ModelCard:
    """Read and validate one card file."""
    path = Path(path)
    card = parse_card(load_yaml(path, CardError), str(path))
    card._path = path.resolve()
    return card


def models_dirs(override: str | os.PathLike | None = None) -> list[Path]:
    """The registry's folders: ``override`` alone, else those in ``$RSC_BENCH_MODELS`` and the shipped ``models/``."""
    return search_path("models", override)


def list_cards(dataset: str | None = None, directory: str | os.PathLike | None = None) -> list[ModelCard]:
    """Every card in the registry (optionally of one dataset), sorted by dataset and name.

    Cards are ``*.yaml`` files in a registry folder or one level below it (``models/<dataset>/``).
    A name must be unique over all folders: a user's card can never stand in for a shipped model.
    """
    cards = [read_card(path) for root in models_dirs(directory) for path in sorted([*root.glob("*.yaml"), *root.glob("*/*.yaml")])]
    by_name: dict[str, list[str]] = {}
    for card in cards:
        by_name.setdefault(card.name, []).append(str(card._path))
    repeated = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    if repeated:
        clashes = "; ".join(f"{name} ({', '.join(paths)})" for name, paths in sorted(repeated.items()))
        raise CardError(f"model names must be unique over the registry folders; repeated: {clashes}")
    return sorted(
        (card for card in cards if dataset is None or card.dataset == dataset),
        key=lambda card: (card.dataset, card.name),
    )


def find_card(name_or_path: str, directory: str | os.PathLike | None = None) -> ModelCard:
    """A card by registered name, or by the path of a card file (which may not take the name of a
    registered model other than itself: its rows would be stored under that model's name)."""
    if name_or_path.endswith((".yaml", ".yml")):
        card = read_card(name_or_path)
        for registered in list_cards(directory=directory):
            if registered.name == card.name and Path(registered._path).resolve() != Path(name_or_path).resolve():
                raise CardError(
                    f"{name_or_path}: the card is named {card.name!r}, the name of the registered model in {registered._path}; "
                    "give your model a name of its own"
                )
        return card
    cards = list_cards(directory=directory)
    for card in cards:
        if card.name == name_or_path:
            return card
    names = [card.name for card in cards]
    raise CardError(f"unknown model {name_or_path!r}{did_you_mean(name_or_path, names)}; registered models: {', '.join(names) or '(none)'}")
