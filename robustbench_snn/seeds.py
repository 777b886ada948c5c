"""Seed derivation: every random stream of a run (a batch's encoder draws, each attack member, the
one-draw clean decision, training steps) is derived here from the run's one seed, apart from the others."""

from __future__ import annotations

# Primes, so that derived seeds of different batches, members and offsets never coincide in practice.
_BATCH_STRIDE = 1_000_003
_MEMBER_STRIDE = 7919
# Restarts of one member: far apart from every member's own seed.
_RESTART_STRIDE = 15_485_863
# The one-draw clean decision (the accuracy papers and model cards report) uses its own draw,
# seeded apart from the batch's, so it leaves every other decision's draws as they were.
_ONE_DRAW_OFFSET = 500_009
# The energy counts draw apart too; clean and adversarial inputs get the same draws, so the
# difference between them is the input's, not the noise's.
_ENERGY_OFFSET = 700_001
# A model's noisy neuron layers: each its own stream, apart from its encoder's and from each other.
_LAYER_STRIDE = 104_729
# Searches of attack settings on calibration images draw apart from every evaluated batch.
_CALIBRATION_OFFSET = 900_007
# The second decision of each fooling input draws apart from the first.
_REDECISION_OFFSET = 300_007


def batch_seed(seed: int, index: int) -> int:
    """The seed of a run's batch (or training step) ``index``: every batch draws apart, and the
    same batch the same draws in every run, in a resumed one and on any process."""
    return seed * _BATCH_STRIDE + index


def member_seed(batch: int, number: int) -> int:
    """The seed of the ``number``-th attack member (from 0) on a batch seeded ``batch``."""
    return batch + _MEMBER_STRIDE * (number + 1)


def restart_seed(member: int, restart: int) -> int:
    """The seed of restart ``restart`` (from 0, which is the member's own seed) of a member seeded ``member``.

    A restart's seed depends on nothing else, so a run with more restarts repeats the fewer ones
    exactly before adding its own: more restarts never find fewer samples.
    """
    return member + _RESTART_STRIDE * restart


def one_draw_seed(batch: int) -> int:
    """The seed of the one-draw clean decision on a batch seeded ``batch``."""
    return batch + _ONE_DRAW_OFFSET


def redecision_seed(batch: int) -> int:
    """The seed of the fresh draws that decide each fooling input a second time, on a batch seeded ``batch``."""
    return batch + _REDECISION_OFFSET


def energy_seed(batch: int) -> int:
    """The seed of the energy counts' draws on a batch seeded ``batch``."""
    return batch + _ENERGY_OFFSET


def layer_seed(model: int, number: int) -> int:
    """The seed of a model's ``number``-th noisy neuron layer (from 0) when the model is seeded ``model``."""
    return model + _LAYER_STRIDE * (number + 1)


def calibration_seed(seed: int, number: int = -1) -> int:
    """The seed of the calibration images' clean decision (``number`` -1) or of the search of the
    ``number``-th member, in a run seeded ``seed``."""
    return member_seed(seed * _BATCH_STRIDE + _CALIBRATION_OFFSET, number)
