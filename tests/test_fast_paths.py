"""The optimized evaluation paths (shared stem, compiled LIF) give the plain path's results."""

import pytest
import torch
from conftest import model_with
from torch.nn import functional as F

from robustbench_snn.attacks import attack_batch, build_protocol, effective_members
from robustbench_snn.data import DATASETS
from robustbench_snn.models import GradientMode

PATHS = {"plain": (False, False), "shared stem": (True, False), "shared stem + compiled LIF": (True, True)}


def use_path(model, path: str):
    model.share_stem, compiled = PATHS[path]
    return model.compile_lif(compiled)


@pytest.mark.parametrize("encoding", ["direct", "rsc"])
def test_fast_paths_give_the_plain_logits_and_input_gradients(shipped_models, fmnist_batch, encoding):
    model = model_with(shipped_models, kind="snn", encoding=encoding)
    images, labels = fmnist_batch
    results = {}
    for path in PATHS:
        use_path(model, path)
        if model.stochastic:
            model.encoder.seed(5)
        inputs = images.clone().requires_grad_(True)
        logits = model(inputs)
        F.cross_entropy(logits, labels).backward()
        results[path] = (logits.detach(), inputs.grad)
    use_path(model, "shared stem")
    plain_logits, plain_gradient = results["plain"]
    assert plain_gradient.abs().sum() > 0
    for path, (logits, gradient) in results.items():
        assert torch.equal(logits, plain_logits), path
        assert torch.allclose(gradient, plain_gradient, rtol=1e-4, atol=1e-7), path


def test_fast_paths_give_the_same_per_sample_attack_outcomes(shipped_models):
    from robustbench_snn.data import load_dataset

    images, labels = (tensor[:64] for tensor in load_dataset("fashion-mnist", "test").tensors)
    for encoding in ("direct", "rsc"):
        model = model_with(shipped_models, kind="snn", encoding=encoding)
        protocol = build_protocol("pgd", {"steps": 5, "eot": 2, "eval_draws": 2}).resolved(DATASETS["fashion-mnist"])
        members = effective_members(model, protocol)
        outcomes = {}
        for path in PATHS:
            use_path(model, path)
            outcome = attack_batch(model, protocol, members, images, labels, seed=11, sources={})
            outcomes[path] = (outcome.clean, outcome.robust)
        use_path(model, "shared stem")
        assert outcomes["plain"][0] != outcomes["plain"][1], "the attack should fool some samples"
        assert all(value == outcomes["plain"] for value in outcomes.values()), encoding


def test_the_stem_is_shared_only_when_every_step_sees_the_same_frame(shipped_models):
    direct = model_with(shipped_models, kind="snn", encoding="direct")
    poisson = model_with(shipped_models, kind="snn", encoding="poisson")
    assert direct.stem_length == 2 and direct.encoder.repeats_frame
    assert not poisson.encoder.repeats_frame
    assert model_with(shipped_models, kind="ann", encoding="direct").stem_length == 0
    with direct.using_gradient(GradientMode("act")):
        inputs = torch.rand(2, 1, 28, 28, requires_grad=True)
        direct(inputs).sum().backward()
    assert torch.isfinite(inputs.grad).all() and inputs.grad.abs().sum() > 0
