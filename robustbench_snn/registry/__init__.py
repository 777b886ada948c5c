"""The model registry: cards under ``models/<dataset>/`` and `load_model`, the one way to get a model."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from robustbench_snn.data import dataset_info
from robustbench_snn.devices import resolve_device
from robustbench_snn.errors import CardError, CheckpointError
from robustbench_snn.models import Classifier, build_classifier
from robustbench_snn.registry.cards import ModelCard, find_card, list_cards, models_dirs, parse_card, read_card
from robustbench_snn.registry.checkpoints import download, read_state_dict, sha256_of, verify, write_state_dict

logger = logging.getLogger(__name__)

__all__ = [
    "ModelCard",
    "find_ann_twin",
    "find_card",
    "list_cards",
    "load_model",
    "models_dirs",
    "parse_card",
    "read_card",
    "resolve_checkpoint",
    "sha256_of",
    "write_state_dict",
]


def resolve_checkpoint(card: ModelCard, checkpoint: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The verified weights file for ``card`` (or the user's ``checkpoint``) and its sha256.

    A card's own checkpoint is checked against its size and hash; a user's file is only hashed.
    """
    if checkpoint is not None:
        path = Path(checkpoint)
        return path, verify(path)
    if card.checkpoint is None:
        raise CheckpointError(
            f"model {card.name!r} has no checkpoint yet. Evaluate your own weights with "
            f"--checkpoint PATH (Python: load_model({card.name!r}, checkpoint=PATH)), or train one with:\n"
            f"  {card.training.command}"
        )
    entry = card.checkpoint
    if entry.url is not None:
        path = download(entry.url, entry.sha256, entry.size_bytes)
    else:
        path = (card.path.parent if card.path else Path.cwd()) / entry.path
    return path, verify(path, entry.sha256, entry.size_bytes)


def _trained_anns(dataset: str) -> list[ModelCard]:
    """The registered, trained, deterministic ANNs of ``dataset``, standard recipe first, then by name."""
    anns = [card for card in list_cards(dataset) if card.kind == "ann" and not card.stochastic and card.checkpoint is not None]
    return sorted(anns, key=lambda card: (card.training.recipe != "standard", card.name))


def find_ann_twin(card: ModelCard) -> ModelCard | None:
    """The registered, trained ANN with the same dataset and architecture as ``card`` (standard recipe first)."""
    return next(
        (other for other in _trained_anns(card.dataset) if other.architecture == card.architecture and other.name != card.name), None
    )


def reference_ann(dataset: str) -> ModelCard | None:
    """The registered, trained ANN of ``dataset`` (standard recipe first, then by name): the transfer
    source of an unregistered model, whose architecture the registry does not know."""
    anns = _trained_anns(dataset)
    return anns[0] if anns else None


def _check_values(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse weights that would load silently wrong: integers where floats belong (or another
    integer type), NaN or infinity, negative BatchNorm variances."""
    for key, tensor in state.items():
        reference = expected.get(key)
        if reference is None:
            continue
        if not reference.is_floating_point():
            if tensor.dtype != reference.dtype:
                raise CheckpointError(f"checkpoint {path}: {key} holds {tensor.dtype} values where the model has {reference.dtype}")
            continue
        if not tensor.is_floating_point():
            raise CheckpointError(f"checkpoint {path}: {key} holds {tensor.dtype} values where the model has floats")
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"checkpoint {path}: {key} holds NaN or infinite values")
        if key.endswith("running_var") and (tensor < 0).any():
            raise CheckpointError(f"checkpoint {path}: {key} holds negative variances")


def load_model(
    name: str,
    *,
    checkpoint: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    seed: int | None = 0,
    registry: str | os.PathLike | None = None,
) -> Classifier:
    """A registered model, weights loaded, in eval mode: images in [0, 1] -> logits.

    ``name`` is a registered name, a card file or a NIR graph file (``.nir``, `load_nir`: for
    another library's graph, call `load_nir` with its time steps and dt); ``checkpoint`` replaces the card's weights;
    ``seed`` seeds the model's randomness (a stochastic coding's, noisy neurons'). The card is kept as
    ``model.card`` and the weights' hash as ``model.checkpoint_sha256``.
    """
    device = resolve_device(device)
    if str(name).endswith(".nir"):
        from robustbench_snn.models.nir_graphs import load_nir

        return load_nir(name, seed=seed).to(device)
    card = find_card(name, registry)
    path, digest = resolve_checkpoint(card, checkpoint)
    try:
        model = build_classifier(card.spec(), dataset_info(card.dataset), seed=seed)
    except (TypeError, ValueError, RuntimeError) as error:
        raise CardError(
            f"model {card.name!r}: architecture {card.architecture.name!r} rejects its arguments "
            f"{card.architecture.args} for {card.dataset}: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
        ) from None
    state = read_state_dict(path)
    _check_values(state, model.state_dict(), path)
    missing, unexpected = [], []
    try:
        result = model.load_state_dict(state, strict=False)
        missing, unexpected = result.missing_keys, result.unexpected_keys
    except RuntimeError as error:
        problems = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
        shown = "\n  ".join(problems[:3]) + (f"\n  ... and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise CheckpointError(
            f"checkpoint {path} does not fit architecture {card.architecture.name!r} of model {card.name!r}:\n  {shown}"
        ) from None
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {path} does not fit architecture {card.architecture.name!r} of model {card.name!r}: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    model.card = card
    model.checkpoint_sha256 = digest
    logger.info("loaded %s from %s", card.name, path)
    return model.to(device).eval()
