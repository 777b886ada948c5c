"""Inputs: the Python API's tensors and models checked at the boundary, before any attack runs.

A benchmark's worst failure is a number that looks real: NaN images, images scaled to 0-255,
labels out of range or a model that answers with the wrong number of classes would each give a
robust accuracy with no flag. Every input a record depends on is checked here, with one
`InputError` naming the argument and what was expected, instead of a raw torch error from deep
inside an attack (or none at all).
"""

from __future__ import annotations

import torch
from torch import nn

from robustbench_snn.data import DatasetInfo
from robustbench_snn.errors import UserError

# Images may leave [0, 1] by this much (rounding of a stored or normalised-and-back image).
RANGE_TOLERANCE = 1e-6


class InputError(UserError):
    """A tensor or model given to the Python API that no evaluation can use."""


def check_images(images: object, dataset: DatasetInfo, argument: str = "images") -> torch.Tensor:
    """``images`` as a floating ``[N, *input_shape]`` tensor of finite values in [0, 1], else an InputError."""
    if not isinstance(images, torch.Tensor):
        raise InputError(
            f"{argument} must be a torch.Tensor of shape [N, {', '.join(map(str, dataset.input_shape))}], got {type(images).__name__}"
        )
    if not images.is_floating_point():
        raise InputError(f"{argument} must be floating point in [0, 1], got dtype {images.dtype} (divide uint8 images by 255)")
    if images.dim() != 1 + len(dataset.input_shape) or tuple(images.shape[1:]) != tuple(dataset.input_shape):
        raise InputError(
            f"{argument} must have shape [N, {', '.join(map(str, dataset.input_shape))}] for {dataset.name}, got {list(images.shape)}"
        )
    if len(images) == 0:
        raise InputError(f"{argument} is empty")
    if images.device.type == "meta":
        raise InputError(f"{argument} are on the meta device, which holds shapes and no values: pass real tensors")
    if not torch.isfinite(images).all():
        raise InputError(f"{argument} contains NaN or infinite values")
    low, high = float(images.min()), float(images.max())
    if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise InputError(f"{argument} must lie in [0, 1] (unnormalised pixels), got values in [{low:g}, {high:g}]")
    return images


def check_labels(labels: object, count: int, dataset: DatasetInfo, argument: str = "labels") -> torch.Tensor:
    """``labels`` as ``count`` integer class indices of ``dataset``, else an InputError."""
    if not isinstance(labels, torch.Tensor):
        raise InputError(f"{argument} must be a torch.Tensor of {count} class indices, got {type(labels).__name__}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise InputError(f"{argument} must be integer class indices, got dtype {labels.dtype}")
    if labels.dim() != 1 or len(labels) != count:
        raise InputError(f"{argument} must have shape [{count}] (one per image), got {list(labels.shape)}")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= dataset.num_classes):
        raise InputError(
            f"{argument} must be in [0, {dataset.num_classes - 1}] for {dataset.name}, got [{int(labels.min())}, {int(labels.max())}]"
        )
    return labels


def check_model(model: object, probe: torch.Tensor, dataset: DatasetInfo) -> None:
    """Refuse a ``model`` that is not a module, whose forward raises on ``probe``, changes its
    input in place, or answers with anything but finite floating logits ``[B, classes]`` or
    ``[T, B, classes]`` (or a tuple whose first element is such) with the dataset's class count."""
    if not isinstance(model, nn.Module):
        raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    before = probe.clone()
    try:  # on a stream of its own: the caller's global generator is left as it was
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            output = model(probe)
    except UserError:
        raise
    except Exception as error:  # the user's own forward: whatever it raises is their model's problem, said plainly
        raise InputError(f"the model's forward raised {type(error).__name__} on {list(probe.shape)} images: {error}") from None
    if not torch.equal(probe, before):
        raise InputError("the model changed its input in place; attacks would then perturb a different image than they report")
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise InputError(f"the model must return logits as a tensor, got {type(output).__name__}")
    classes = dataset.num_classes
    shape = list(output.shape)
    if shape != [len(probe), classes] and (len(shape) != 3 or shape[1:] != [len(probe), classes]):
        raise InputError(
            f"the model must return logits [B, {classes}] or [T, B, {classes}] for {dataset.name}, got {shape} for B = {len(probe)}"
        )
    if not output.is_floating_point():
        raise InputError(f"the model must return floating-point logits, got dtype {output.dtype}")
    if not torch.isfinite(output).all():
        raise InputError("the model returned NaN or infinite logits")


# The top-1 / top-2 logit margin beyond which float32 softmax is exactly one-hot (exp(-88) underflows
# to 0 as a probability's share), so cross-entropy has no gradient on correctly classified inputs.
SATURATION_MARGIN = 80.0


def check_differentiable(model: nn.Module, probe: torch.Tensor) -> float:
    """Refuse a ``model`` whose logits have no autograd path to its input (detached, or computed
    under no_grad), which gradient attacks would meet with silence; return the largest top-1 /
    top-2 logit margin on ``probe`` (above `SATURATION_MARGIN`, cross-entropy saturates)."""
    images = probe.detach().clone().requires_grad_(True)
    with torch.enable_grad(), torch.random.fork_rng(devices=[]):
        output = model(images)
    if isinstance(output, (tuple, list)):
        output = output[0]
    logits = output.mean(0) if output.dim() == 3 else output
    if not logits.requires_grad or torch.autograd.grad(logits.sum(), images, allow_unused=True)[0] is None:
        raise InputError(
            "the model's logits do not depend on its input through autograd (a detached output, or a forward under "
            "no_grad): gradient attacks would find nothing; return logits computed from the input, or attack with a "
            "black-box protocol (square)"
        )
    top = logits.detach().topk(2, dim=1).values
    return float((top[:, 0] - top[:, 1]).max())
