"""The Python API refuses tensors and models that would give a number that only looks real."""

import pytest
import torch
from torch import nn

from robustbench_snn import attack, benchmark
from robustbench_snn.evaluation.inputs import InputError
from robustbench_snn.robustbench import clean_accuracy


class Linear(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(28 * 28, classes)

    def forward(self, images):
        return self.linear(images.flatten(1))


def _attack(model, images, labels):
    return attack(model, images, labels, dataset="fashion-mnist", attack="fgsm", seed=0)


@pytest.mark.parametrize(
    "images, expected",
    [
        (lambda x: x.clone().fill_(float("nan")), "NaN"),
        (lambda x: x * 255, r"\[0, 1\]"),
        (lambda x: x - 1, r"\[0, 1\]"),
        (lambda x: (x * 255).to(torch.uint8), "floating point"),
        (lambda x: x.flatten(1), "shape"),
        (lambda x: x.repeat(1, 3, 1, 1), "shape"),
        (lambda x: x.numpy(), "torch.Tensor"),
        (lambda x: x.tolist(), "torch.Tensor"),
        (lambda x: x[:0], "empty"),
    ],
)
def test_bad_images_are_refused_naming_the_argument(fmnist_batch, images, expected):
    clean, labels = fmnist_batch
    bad = images(clean)
    with pytest.raises(InputError, match=expected):
        _attack(Linear(), bad, labels[: len(bad)] if hasattr(bad, "__len__") else labels)


@pytest.mark.parametrize(
    "labels, expected",
    [
        (lambda y: y + 10, r"\[0, 9\]"),
        (lambda y: y - 11, r"\[0, 9\]"),
        (lambda y: y[:-1], "shape"),
        (lambda y: y.float(), "integer"),
        (lambda y: y.bool(), "integer"),
        (lambda y: y.numpy(), "torch.Tensor"),
    ],
)
def test_bad_labels_are_refused_naming_the_argument(fmnist_batch, labels, expected):
    images, clean = fmnist_batch
    with pytest.raises(InputError, match=expected):
        _attack(Linear(), images, labels(clean))


class WrongClasses(Linear):
    def __init__(self):
        super().__init__(classes=7)


class NaNLogits(Linear):
    def forward(self, images):
        return super().forward(images) * float("nan")


class IntegerLogits(Linear):
    def forward(self, images):
        return super().forward(images).round().long()


class Raises(Linear):
    def forward(self, images):
        raise ValueError("broken on purpose")


class InPlace(Linear):
    def forward(self, images):
        images.mul_(0.5)
        return super().forward(images)


@pytest.mark.parametrize(
    "model, expected",
    [
        (WrongClasses, r"\[B, 10\]"),
        (NaNLogits, "NaN"),
        (IntegerLogits, "floating-point"),
        (Raises, "broken on purpose"),
        (InPlace, "in place"),
        (lambda: lambda images: images, "nn.Module"),
    ],
)
def test_models_that_cannot_give_a_real_number_are_refused(fmnist_batch, model, expected):
    images, labels = fmnist_batch
    with pytest.raises(InputError, match=expected):
        _attack(model(), images, labels)
    with pytest.raises(InputError, match=expected):
        benchmark(model(), dataset="fashion-mnist", attack="fgsm", n_examples=8, seed=0)


def test_the_global_generator_is_untouched_by_the_model_check(fmnist_batch):
    images, labels = fmnist_batch

    class Noisy(Linear):
        def forward(self, images):
            return super().forward(images + 0.01 * torch.randn_like(images))

    model = Noisy()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _attack(model, images, labels)
    assert torch.equal(torch.rand(3), expected)


def test_clean_accuracy_on_no_images_is_an_error():
    with pytest.raises(InputError, match="non-empty"):
        clean_accuracy(Linear(), torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long))


class _Around(nn.Module):
    """The shipped ANN with its logits scaled, or fed a detached input."""

    def __init__(self, inner: nn.Module, scale: float = 1.0, detach: bool = False) -> None:
        super().__init__()
        self.inner, self.scale, self.detach = inner, scale, detach

    def forward(self, images):
        return self.inner(images.detach() if self.detach else images) * self.scale


def test_a_model_detached_from_its_input_is_refused_for_gradient_attacks_only(shipped_models, fmnist_batch):
    images, labels = fmnist_batch
    detached = _Around(shipped_models["fmnist_ann"], detach=True)
    for run in (
        lambda: benchmark(detached, dataset="fashion-mnist", attack="pgd", n_examples=8),
        lambda: attack(detached, images, labels, dataset="fashion-mnist", attack="pgd"),
    ):
        with pytest.raises(InputError, match="do not depend on its input through autograd"):
            run()
    black_box = benchmark(detached, dataset="fashion-mnist", attack="square", n_examples=8, overrides={"queries": 20})
    assert black_box.robust_accuracy is not None


def test_logits_so_large_that_cross_entropy_saturates_are_flagged(shipped_models):
    run = dict(dataset="fashion-mnist", attack="pgd", n_examples=32, batch_size=32)
    saturated = benchmark(_Around(shipped_models["fmnist_ann"], scale=1e4), **run)
    plain = benchmark(_Around(shipped_models["fmnist_ann"]), **run)
    assert "saturated_logits" in saturated.flags and "saturated_logits" not in plain.flags
    assert saturated.robust_accuracy > plain.robust_accuracy, "the saturation is real: cross-entropy PGD finds less"
