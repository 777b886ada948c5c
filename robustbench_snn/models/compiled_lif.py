"""An optional LIF kernel: the recurrence over all T steps compiled by ``torch.compile`` into one loop.

spikingjelly's LIF runs several full-tensor operations per step; compiled, the forward and the
BPTT backward each become a single pass over memory, several times faster on a CPU. The values
are the same as spikingjelly's multi-step ``LIFNode`` (decay input; hard reset to ``v_reset``,
or soft reset when it is None): the same arithmetic in the same order, so spikes are
bit-identical, and the backward uses spikingjelly's own surrogate derivatives.

Per step, with ``h_t`` the membrane potential before firing:
    h_t = v_{t-1} + (x_t - (v_{t-1} - v_reset)) / tau       (soft reset: v_reset taken as 0)
    s_t = H(h_t - threshold)
    v_t = h_t (1 - s_t) + v_reset s_t                         (soft reset: h_t - threshold s_t)
Backward, with g_t the surrogate derivative at h_t - threshold and r_t = dv_t/dh_t:
    dL/dh_t = dL/ds_t g_t + dL/dh_{t+1} (1 - 1/tau) r_t,      dL/dx_t = dL/dh_t / tau

A current that is the same at every step (a shared stem's output) is passed once, ``[1, ...]``:
the kernel reads it at every step and its backward returns the gradient summed over steps,
without materialising T copies of either.

Compiling costs tens of seconds the first time on a machine (then it is cached on disk), so the
kernel is opt-in: ``Classifier.compile_lif()``, ``rsc-bench evaluate --compile``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import torch

from robustbench_snn.models.gradients import SURROGATES

logger = logging.getLogger(__name__)


def _potentials(currents: torch.Tensor, timesteps: int, tau: float, threshold: float, v_reset: float | None) -> torch.Tensor:
    reset_value = 0.0 if v_reset is None else v_reset
    potential = torch.full_like(currents[0], reset_value)
    charged_steps = []
    for step in range(timesteps):
        charged = potential + (currents[min(step, currents.shape[0] - 1)] - (potential - reset_value)) / tau
        charged_steps.append(charged)
        fired = (charged >= threshold).to(charged.dtype)
        if v_reset is None:
            potential = charged - fired * threshold
        else:
            potential = (1.0 - fired) * charged + fired * reset_value
    return torch.stack(charged_steps)


def _recurrent_gradient(
    grad_spikes: torch.Tensor,
    before_fire: torch.Tensor,
    slope: torch.Tensor,
    tau: float,
    threshold: float,
    v_reset: float | None,
    detach_reset: bool,
    constant_input: bool,
) -> torch.Tensor:
    """BPTT through the LIF recurrence with the surrogate derivative ``slope`` at each ``h_t - threshold``."""
    fired = (before_fire >= threshold).to(before_fire.dtype)
    if v_reset is None:
        through_reset = torch.ones_like(slope) if detach_reset else 1.0 - threshold * slope
    else:
        through_reset = (1.0 - fired) if detach_reset else (1.0 - fired) + (v_reset - before_fire) * slope
    carried = through_reset * (1.0 - 1.0 / tau)
    direct = grad_spikes * slope
    grad_charged = direct[-1]
    steps = [grad_charged]
    for step in range(before_fire.shape[0] - 2, -1, -1):
        grad_charged = direct[step] + grad_charged * carried[step]
        steps.append(grad_charged)
    if constant_input:
        return sum(steps).unsqueeze(0) / tau
    return torch.stack(steps[::-1]) / tau


def _input_gradient(
    grad_spikes: torch.Tensor,
    before_fire: torch.Tensor,
    tau: float,
    threshold: float,
    v_reset: float | None,
    derivative: Callable,
    alpha: float,
    detach_reset: bool,
    constant_input: bool,
) -> torch.Tensor:
    shifted = before_fire - threshold
    slope = derivative(torch.ones_like(shifted), shifted, alpha)[0]
    return _recurrent_gradient(grad_spikes, before_fire, slope, tau, threshold, v_reset, detach_reset, constant_input)


# Each surrogate, and a constant or per-step input, is its own compiled version of the backward:
# the `reliable` protocol alone needs ten. Past torch's default limit of 8 versions per function
# the rest silently ran uncompiled (the fifth surrogate's PGD-10 took 1.4 to 2x as long as the
# other four's in an earlier stored `reliable` row).
RECOMPILE_LIMIT = 64


@functools.cache
def _compiled_kernel(function):
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    return torch.compile(function)


def _compiled(function):
    """``function`` compiled once for any number of neurons: the size of dim 1 of its [T, N] tensor
    arguments is marked dynamic, while T and the float settings stay constants (``dynamic=True``
    would make them symbolic too, and its code ran about 1.3x slower per attack step here)."""
    kernel = _compiled_kernel(function)

    def call(*args):
        for argument in args:
            if isinstance(argument, torch.Tensor):
                torch._dynamo.mark_dynamic(argument, 1)
        return kernel(*args)

    return call


class CompiledLIF(torch.autograd.Function):
    """``spikes [T, ...] = CompiledLIF.apply(currents, T, tau, threshold, v_reset, surrogate, alpha, detach_reset)``
    with ``currents`` of shape ``[T, ...]``, or ``[1, ...]`` for the same current at every step."""

    # The kernels see ``[T, N]`` tensors that are not views (``detach``), so layers of any shape
    # share one compiled version instead of recompiling for each one's rank.

    @staticmethod
    def forward(ctx, currents, timesteps, tau, threshold, v_reset, surrogate_name, alpha, detach_reset):
        flat = currents.reshape(currents.shape[0], -1).detach()
        before_fire = _compiled(_potentials)(flat, timesteps, tau, threshold, v_reset)
        ctx.save_for_backward(before_fire)
        constant_input = currents.shape[0] == 1 and timesteps > 1
        # the surrogate's derivative looked up here, so the compiled backward sees a plain function
        ctx.settings = (tau, threshold, v_reset, SURROGATES[surrogate_name].derivative, alpha, detach_reset, constant_input)
        ctx.shape = currents.shape
        return (before_fire >= threshold).to(currents.dtype).view(timesteps, *currents.shape[1:])

    @staticmethod
    def backward(ctx, grad_spikes):
        (before_fire,) = ctx.saved_tensors
        flat = grad_spikes.reshape(before_fire.shape).contiguous().detach()
        grad = _compiled(_input_gradient)(flat, before_fire, *ctx.settings)
        return grad.view(ctx.shape), None, None, None, None, None, None, None


def potentials(currents: torch.Tensor, timesteps: int, tau: float, threshold: float, v_reset: float | None, compiled: bool) -> torch.Tensor:
    """The membrane potentials before firing, ``[T, ...]``, for currents ``[T, ...]`` (no gradient)."""
    flat = currents.reshape(currents.shape[0], -1).detach()
    kernel = _compiled(_potentials) if compiled else _potentials
    return kernel(flat, timesteps, tau, threshold, v_reset).view(timesteps, *currents.shape[1:])


class LIFWithSlope(torch.autograd.Function):
    """``spikes = LIFWithSlope.apply(currents, before_fire, slope, tau, threshold, v_reset, detach_reset, compiled)``:
    the spikes of precomputed potentials ``before_fire``, differentiated by BPTT with a given surrogate
    derivative ``slope`` per element (adaptive surrogates: PDSG, ASSG)."""

    @staticmethod
    def forward(ctx, currents, before_fire, slope, tau, threshold, v_reset, detach_reset, compiled):
        ctx.save_for_backward(before_fire.reshape(before_fire.shape[0], -1), slope.reshape(slope.shape[0], -1))
        ctx.settings = (tau, threshold, v_reset, detach_reset, False)
        ctx.compiled = compiled
        ctx.shape = currents.shape
        return (before_fire >= threshold).to(currents.dtype)

    @staticmethod
    def backward(ctx, grad_spikes):
        before_fire, slope = ctx.saved_tensors
        flat = grad_spikes.reshape(before_fire.shape).contiguous().detach()
        kernel = _compiled(_recurrent_gradient) if ctx.compiled else _recurrent_gradient
        grad = kernel(flat, before_fire, slope.contiguous(), *ctx.settings)
        return grad.view(ctx.shape), None, None, None, None, None, None, None
