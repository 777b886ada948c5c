"""Training that produces registry entries: a checkpoint plus its model card.

Every recipe (`robustbench_snn.training.recipes`) runs in the same loop: Adam with a cosine
learning-rate schedule over all steps, no augmentation, batches shuffled by a seeded generator.
The card records the exact command, every hyperparameter, and the environment the bits depend on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from robustbench_snn.data import dataset_info, load_dataset
from robustbench_snn.defences import RECIPES, NeuronType, parameter_owners
from robustbench_snn.devices import resolve_device
from robustbench_snn.errors import UserError
from robustbench_snn.evaluation import benchmark
from robustbench_snn.files import replacing
from robustbench_snn.models import Classifier, ModelSpec, build_classifier
from robustbench_snn.provenance import versions
from robustbench_snn.registry import ModelCard, list_cards, parse_card, write_state_dict
from robustbench_snn.shipped import in_checkout, shipped_folder
from robustbench_snn.training.recipes import Recipe, recipe_reference

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingConfig:
    """Hyperparameters of a training run; all of them are written into the model card. ``options``
    are the recipe's own (`robustbench_snn.defences.RecipeInfo.parameters`), checked by its schema
    with its defaults filled in."""

    recipe: str = "standard"
    epochs: int = 5
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    schedule: str = "cosine"
    augmentation: str = "none"
    seed: int = 0
    train_examples: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        recipe = RECIPES.lookup(self.recipe)
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise UserError("epochs and batch size must be >= 1 and the learning rate > 0")
        owners = parameter_owners()
        for option, value in self.options.items():
            owner = owners[option][0] if option in owners else None
            if value is not None and owner is not recipe:
                kind = "neurons" if isinstance(owner, NeuronType) else "recipe"
                where = f"an option of the {owner.name} {kind}" if owner is not None else "no recipe's option"
                raise UserError(f"{option.replace('_', '-')} is {where}, not of {self.recipe}")
        object.__setattr__(self, "options", recipe.parameters_of(self.options))

    def for_dataset(self, dataset: str) -> "TrainingConfig":
        """This configuration with the recipe's dataset-dependent defaults filled in for ``dataset``."""
        defaults = RECIPES[self.recipe].dataset_defaults
        if defaults is None:
            return self
        unset = {option: value for option, value in defaults(dataset_info(dataset)).items() if self.options.get(option) is None}
        return replace(self, options={**self.options, **unset})

    def as_card_dict(self) -> dict:
        """The hyperparameters for the card: the common ones, then the recipe's own that are set."""
        common = {key: value for key, value in asdict(self).items() if key != "options"}
        return {**common, **{key: value for key, value in self.options.items() if value is not None}}


def build_recipe(model: Classifier, spec: ModelSpec, dataset: str, config: TrainingConfig, device: str) -> Recipe:
    """The batch loss of ``config.recipe`` for ``model``, checking that the recipe fits the model."""
    return RECIPES[config.recipe].build(model, spec, dataset, config.for_dataset(dataset), device)


def train_classifier(
    spec: ModelSpec,
    dataset: str,
    config: TrainingConfig,
    data_dir: str | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> Classifier:
    """Train a new classifier of ``spec`` on ``dataset``'s training split."""
    device = resolve_device(device)
    torch.manual_seed(config.seed)
    info = dataset_info(dataset)
    try:
        model = build_classifier(spec, info, seed=config.seed).to(device)
        with torch.no_grad():
            model.eval()(torch.zeros(1, *info.input_shape, device=device))
    except (RuntimeError, ValueError, TypeError) as error:
        raise UserError(
            f"architecture {spec.architecture!r} does not fit {dataset}'s {'x'.join(map(str, info.input_shape))} "
            f"images: {str(error).splitlines()[0]}"
        ) from None
    train_set = load_dataset(dataset, "train", data_dir)
    if config.train_examples is not None:
        train_set = torch.utils.data.Subset(train_set, range(min(config.train_examples, len(train_set))))
    shuffle = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, generator=shuffle)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * len(loader))
    batch_loss = build_recipe(model, spec, dataset, config, device)
    prepare = getattr(batch_loss, "prepare", None)
    if prepare is not None:  # a recipe that starts from something measured on the data (HoSNN's signatures)
        prepare(model, (images.to(device) for images, _ in loader))
    if hasattr(batch_loss, "total_steps"):  # a recipe whose loss follows a schedule over training (TGO's ramp)
        batch_loss.total_steps = config.epochs * len(loader)
    after_step = getattr(batch_loss, "after_step", None)
    step = 0
    for epoch in range(config.epochs):
        model.train()
        total_loss, correct, seen = 0.0, 0, 0
        parts: dict[str, float] = {}
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", disable=not progress)
        for images, labels in bar:
            images, labels = images.to(device), labels.to(device)
            loss = batch_loss(model, images, labels, step)
            optimizer.zero_grad(set_to_none=True)
            loss.total.backward()
            optimizer.step()
            if after_step is not None:
                after_step(model)
            scheduler.step()
            step += 1
            total_loss += loss.total.item() * len(labels)
            correct += (loss.logits.argmax(1) == labels).sum().item()
            seen += len(labels)
            for name, value in loss.parts.items():
                parts[name] = parts.get(name, 0.0) + value * len(labels)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}")
        averages = ", ".join(f"{name} {value / seen:.4f}" for name, value in parts.items())
        logger.info(
            "epoch %d/%d: loss %.4f (%s), train accuracy %.4f", epoch + 1, config.epochs, total_loss / seen, averages, correct / seen
        )
    return model.eval()


def training_environment(device: str) -> dict:
    """What makes a checkpoint bit-reproducible beyond the command: versions, device and CPU threads."""
    found = versions()
    return {"torch": found["torch"], "spikingjelly": found["spikingjelly"], "device": device, "threads": torch.get_num_threads()}


def entry_paths(out: Path) -> tuple[Path, Path]:
    """The checkpoint and card files of output stem ``out`` (names may contain dots, e.g. s0.2)."""
    return out.parent / f"{out.name}.safetensors", out.parent / f"{out.name}.yaml"


def check_output(out: Path, overwrite: bool = False) -> None:
    """Refuse, before any training, an output stem ``out`` whose card or checkpoint would replace a
    model: a model shipped inside an installed package never; a registered model (a card of that
    name on the registry's search path, the checkout's ``models/`` included) or any existing file
    only with ``overwrite``, and a registered model only at its own files (one name, one model)."""
    files = [path for path in entry_paths(out) if path.exists()]
    shipped = shipped_folder("models").resolve()
    if not in_checkout() and any(shipped in path.resolve().parents for path in files):
        raise UserError(f"{out} is a model shipped with robustbench-snn; it is never replaced: write to another --out")
    registered = next((card for card in list_cards() if card.name == out.name), None)
    if registered is not None:
        own_files = Path(registered._path).resolve() == entry_paths(out)[1].resolve()
        if not (overwrite and own_files):
            where = "retrain it with --overwrite at its own files" if own_files else "choose another name"
            raise UserError(f"{out.name!r} is a registered model ({registered._path}); {where} (its card and checkpoint are kept)")
    if files and not overwrite:
        raise UserError(f"{' and '.join(map(str, files))} already exist{'s' if len(files) == 1 else ''}; pass --overwrite to replace them")


def write_entry(
    model: Classifier,
    spec: ModelSpec,
    dataset: str,
    config: TrainingConfig,
    out: Path,
    command: str,
    data_dir: str | None = None,
    device: str = "cpu",
    progress: bool = False,
    training_seconds: float | None = None,
) -> ModelCard:
    """Save ``out``.safetensors, measure clean accuracy on the full test split, write ``out``.yaml
    (with every hyperparameter as training used it, dataset-dependent defaults resolved, and how
    long the training took, ``training_seconds``, where given)."""
    config = config.for_dataset(dataset)
    checkpoint, card_path = entry_paths(out)
    sha256, size = write_state_dict(model.state_dict(), checkpoint)
    evaluation_seed = 0
    record = benchmark(model, dataset=dataset, n_examples=None, seed=evaluation_seed, data_dir=data_dir, device=device, progress=progress)
    card = parse_card(
        {
            "name": out.name,
            "dataset": dataset,
            "description": f"{spec.kind.upper()} {spec.architecture} with {spec.encoding} coding, T={spec.timesteps}"
            + ("" if config.recipe == "standard" else f", {config.recipe} recipe"),
            "architecture": {"name": spec.architecture, "args": spec.architecture_args},
            "kind": spec.kind,
            "encoding": {"name": spec.encoding, **spec.encoding_params},
            "timesteps": spec.timesteps,
            "neuron": spec.neuron.as_dict() if spec.kind == "snn" else None,
            "training": {
                "recipe": config.recipe,
                "command": command,
                "seed": config.seed,
                "hyperparameters": config.as_card_dict(),
                "environment": training_environment(device),
                "seconds": None if training_seconds is None else round(training_seconds, 1),
            },
            "checkpoint": {"path": checkpoint.name, "sha256": sha256, "size_bytes": size},
            "claimed": {
                "clean_accuracy": round(record.clean_accuracy, 4),
                "n_examples": record.n_examples,
                "seed": evaluation_seed,
                "command": f"rsc-bench evaluate --model {out.name} --attack none -n {record.n_examples} --seed {evaluation_seed}",
            },
            "reference": recipe_reference(config.recipe, spec.kind, spec.encoding),
            "license": "MIT",
        },
        str(card_path),
    )
    with replacing(card_path) as partial:
        partial.write_text(card.to_yaml())
    logger.info("wrote %s and %s (clean accuracy %.4f)", checkpoint, card_path, record.clean_accuracy)
    return card
