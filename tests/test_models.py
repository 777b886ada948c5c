"""Models: input gradients attacks rely on, state reset, and every registered architecture."""

import pytest
import torch
from conftest import model_with
from torch.nn import functional as F

from robustbench_snn.data import DATASETS
from robustbench_snn.errors import UserError
from robustbench_snn.models import ARCHITECTURES, ModelSpec, SpikingActivation, build_backbone, build_classifier

KINDS_AND_ENCODINGS = [("ann", "direct"), ("snn", "direct"), ("snn", "poisson"), ("snn", "rsc")]


@pytest.mark.parametrize(("kind", "encoding"), KINDS_AND_ENCODINGS)
def test_input_gradient_of_shipped_models_is_finite_and_nonzero(shipped_models, fmnist_batch, kind, encoding):
    model = model_with(shipped_models, kind=kind, encoding=encoding)
    images, labels = fmnist_batch
    images = images.clone().requires_grad_(True)
    F.cross_entropy(model(images), labels).backward()
    gradient = images.grad
    assert torch.isfinite(gradient).all()
    per_sample = gradient.flatten(1).abs().sum(1)
    assert (per_sample > 0).float().mean() >= 0.9


@pytest.mark.parametrize("encoding", ["direct", "poisson", "rsc"])
def test_input_gradient_reaches_the_image_for_every_encoder(encoding, fmnist_batch):
    params = {"sigma": 0.2, "variant": "II"} if encoding == "rsc" else {}
    torch.manual_seed(0)
    model = build_classifier(ModelSpec("small_cnn", "snn", encoding, params, timesteps=4), DATASETS["fashion-mnist"], seed=0)
    images = fmnist_batch[0].clone().requires_grad_(True)
    model(images).logsumexp(1).sum().backward()
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0


def test_direct_snn_gives_identical_logits_when_called_twice(shipped_models, fmnist_batch):
    model = model_with(shipped_models, kind="snn", encoding="direct")
    images = fmnist_batch[0]
    first = model(images)
    model(torch.rand_like(images))
    assert torch.equal(model(images), first)


def test_membrane_state_does_not_leak_between_batches_of_different_size(shipped_models, fmnist_batch):
    model = model_with(shipped_models, kind="snn", encoding="direct")
    images = fmnist_batch[0]
    alone = model(images[:3])
    model(images)
    assert torch.equal(model(images[:3]), alone)


def test_snn_logits_are_the_mean_over_timesteps(fmnist_batch):
    torch.manual_seed(0)
    model = build_classifier(ModelSpec("small_cnn", "snn", timesteps=4), DATASETS["fashion-mnist"]).eval()
    images = fmnist_batch[0][:4]
    captured = {}
    readout = model.backbone[-1]
    readout.register_forward_hook(lambda module, args, output: captured.setdefault("per_step", output))
    logits = model(images)
    assert torch.allclose(captured["per_step"].view(4, 4, -1).mean(0), logits)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.parametrize("kind", ["ann", "snn"])
def test_every_architecture_builds_as_snn_and_ann_twin(name, kind):
    dataset = DATASETS["fashion-mnist" if name == "small_cnn" else "cifar10"]
    spec = ModelSpec(name, kind, timesteps=2 if kind == "snn" else 1)
    model = build_classifier(spec, dataset)
    spiking = [module for module in model.modules() if isinstance(module, SpikingActivation)]
    assert bool(spiking) == (kind == "snn")
    logits = model(torch.rand(2, *dataset.input_shape))
    assert logits.shape == (2, dataset.num_classes)


def test_ann_twin_has_the_same_weights_layout_as_the_snn():
    info = DATASETS["cifar10"]
    ann = build_classifier(ModelSpec("resnet19", "ann"), info)
    snn = build_classifier(ModelSpec("resnet19", "snn", timesteps=4), info)
    ann_shapes = {key: value.shape for key, value in ann.state_dict().items()}
    assert ann_shapes == {key: value.shape for key, value in snn.state_dict().items()}


def test_unknown_architecture_or_bad_arguments_are_user_errors():
    with pytest.raises(UserError, match="unknown architecture 'resnet999'"):
        build_backbone("resnet999", torch.nn.ReLU, (1, 28, 28), 10)
    with pytest.raises(UserError, match="bad arguments for architecture 'small_cnn'"):
        build_backbone("small_cnn", torch.nn.ReLU, (1, 28, 28), 10, depth=3)
