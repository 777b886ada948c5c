"""Encoders: the statistics and seeding that the robustness claims rest on."""

import pytest
import torch

from robustbench_snn.errors import UserError
from robustbench_snn.models import DirectEncoder, PoissonEncoder, RSCEncoder, build_encoder


def test_direct_coding_repeats_the_image():
    images = torch.rand(3, 1, 5, 5)
    sequence = DirectEncoder()(images, 4)
    assert sequence.shape == (4, 3, 1, 5, 5)
    assert all(torch.equal(step, images) for step in sequence)


def test_poisson_spike_mean_approaches_the_intensity():
    images = torch.linspace(0, 1, 11).view(1, 1, 1, 11)
    spikes = PoissonEncoder(seed=0)(images, 20000)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(spikes.mean(0), images, atol=0.015)


def test_poisson_gradient_is_straight_through():
    images = torch.rand(2, 1, 4, 4, requires_grad=True)
    PoissonEncoder(seed=0)(images, 3).sum().backward()
    assert torch.equal(images.grad, torch.full_like(images, 3.0))


def test_rsc_variant_one_shares_noise_across_steps():
    images = torch.rand(2, 1, 6, 6)
    noise = RSCEncoder(sigma=0.3, variant="I", seed=0)(images, 4) - images
    assert noise.abs().sum() > 0
    assert all(torch.equal(step, noise[0]) for step in noise)
    assert noise.std().item() == pytest.approx(0.3, rel=0.25)


def test_rsc_variant_two_draws_fresh_noise_every_step():
    images = torch.rand(2, 1, 6, 6)
    noise = RSCEncoder(sigma=0.3, variant="II", seed=0)(images, 4) - images
    assert not any(torch.equal(noise[0], noise[step]) for step in range(1, 4))


@pytest.mark.parametrize("make", [lambda seed: PoissonEncoder(seed=seed), lambda seed: RSCEncoder(0.2, "II", seed=seed)])
def test_fixed_seed_gives_identical_draws_and_each_forward_is_fresh(make):
    images = torch.rand(4, 1, 8, 8)
    first, second = make(7), make(7)
    draw_a, draw_b = first(images, 3), second(images, 3)
    assert torch.equal(draw_a, draw_b)
    assert not torch.equal(first(images, 3), draw_a)
    first.seed(7)
    assert torch.equal(first(images, 3), draw_a)


def test_encoder_accepts_a_generator():
    generator = torch.Generator().manual_seed(3)
    images = torch.rand(2, 1, 4, 4)
    draw = RSCEncoder(0.1, "I", generator=generator)(images, 2)
    assert torch.equal(draw, RSCEncoder(0.1, "I", seed=3)(images, 2))


def test_bad_encoder_parameters_are_user_errors():
    with pytest.raises(UserError, match="variant"):
        RSCEncoder(0.1, "III")
    with pytest.raises(UserError, match="sigma"):
        RSCEncoder(-0.1)
    with pytest.raises(UserError, match="unknown encoding"):
        build_encoder("rate")
