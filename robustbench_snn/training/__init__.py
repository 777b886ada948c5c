"""Training recipes that produce registry entries: checkpoint plus model card.

``standard``: cross-entropy, Adam with a cosine learning-rate schedule; SNNs learn by BPTT
through their surrogate, and stochastic encoders (Poisson, RSC) draw their noise during
training, so an RSC model trains under its own noise.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from robustbench_snn.data import dataset_info, load_dataset
from robustbench_snn.errors import UserError
from robustbench_snn.evaluation import benchmark
from robustbench_snn.models import Classifier, ModelSpec, build_classifier
from robustbench_snn.registry import ModelCard, parse_card, write_state_dict

logger = logging.getLogger(__name__)

RECIPES = ("standard",)


@dataclass(frozen=True)
class TrainingConfig:
    """Hyperparameters of a training run; all of them are written into the model card."""

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

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise UserError(f"unknown recipe {self.recipe!r}; available: {', '.join(RECIPES)}")
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise UserError("epochs and batch size must be >= 1 and the learning rate > 0")


def train_classifier(
    spec: ModelSpec,
    dataset: str,
    config: TrainingConfig,
    data_dir: str | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> Classifier:
    """Train a new classifier of ``spec`` on ``dataset``'s training split."""
    torch.manual_seed(config.seed)
    model = build_classifier(spec, dataset_info(dataset), seed=config.seed).to(device)
    train_set = load_dataset(dataset, "train", data_dir)
    if config.train_examples is not None:
        train_set = torch.utils.data.Subset(train_set, range(min(config.train_examples, len(train_set))))
    shuffle = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, generator=shuffle)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * len(loader))
    for epoch in range(config.epochs):
        model.train()
        total_loss, correct, seen = 0.0, 0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", disable=not progress)
        for images, labels in bar:
            images, labels = images.to(device), labels.to(device)
            logits = model(images)
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(labels)
            correct += (logits.argmax(1) == labels).sum().item()
            seen += len(labels)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}")
        logger.info("epoch %d/%d: loss %.4f, train accuracy %.4f", epoch + 1, config.epochs, total_loss / seen, correct / seen)
    return model.eval()


def entry_paths(out: Path) -> tuple[Path, Path]:
    """The checkpoint and card files of output stem ``out`` (names may contain dots, e.g. s0.2)."""
    return out.parent / f"{out.name}.safetensors", out.parent / f"{out.name}.yaml"


def write_entry(
    model: Classifier,
    spec: ModelSpec,
    dataset: str,
    config: TrainingConfig,
    out: Path,
    command: str,
    data_dir: str | None = None,
    progress: bool = False,
) -> ModelCard:
    """Save ``out``.safetensors, measure clean accuracy on the full test split, write ``out``.yaml."""
    checkpoint, card_path = entry_paths(out)
    sha256, size = write_state_dict(model.state_dict(), checkpoint)
    evaluation_seed = 0
    record = benchmark(model, dataset=dataset, n_examples=None, seed=evaluation_seed, data_dir=data_dir, progress=progress)
    card = parse_card(
        {
            "name": out.name,
            "dataset": dataset,
            "description": f"{spec.kind.upper()} {spec.architecture} with {spec.encoding} coding, T={spec.timesteps}",
            "architecture": {"name": spec.architecture, "args": spec.architecture_args},
            "kind": spec.kind,
            "encoding": {"name": spec.encoding, **spec.encoding_params},
            "timesteps": spec.timesteps,
            "neuron": spec.neuron.as_dict() if spec.kind == "snn" else None,
            "training": {"recipe": config.recipe, "command": command, "seed": config.seed, "hyperparameters": asdict(config)},
            "checkpoint": {"path": checkpoint.name, "sha256": sha256, "size_bytes": size},
            "claimed": {
                "clean_accuracy": round(record.clean_accuracy, 4),
                "n_examples": record.n_examples,
                "seed": evaluation_seed,
                "command": f"rsc-bench evaluate --model {out.name} --attack none -n {record.n_examples} --seed {evaluation_seed}",
            },
            "reference": {
                "paper": "Wu et al., RSC-SNN: Exploring the Trade-off Between Adversarial Robustness and "
                "Accuracy in Spiking Neural Networks via Randomized Smoothing Coding, ACM MM 2024",
                "url": "https://arxiv.org/abs/2407.20099",
            },
            "license": "MIT",
        },
        str(card_path),
    )
    card_path.write_text(card.to_yaml())
    logger.info("wrote %s and %s (clean accuracy %.4f)", checkpoint, card_path, record.clean_accuracy)
    return card
