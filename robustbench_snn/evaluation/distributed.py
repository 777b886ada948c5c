"""Sharding one evaluation across processes with torch.distributed (``torchrun``, or ``srun`` on SLURM).

Every rank plans the same evaluation (the plan is deterministic) and runs every ``world``-th batch
from its rank on. Batches are seeded by their index, so a batch's outcome does not depend on
which rank ran it; rank 0 gathers the outcomes, assesses them, stores the one row, and shares the
record with the other ranks. Finished batches go to the run's shared partial file as they finish,
so a rerun after a crash or a kill resumes whichever rank had done them. CPU ranks talk over gloo,
GPU ranks over NCCL with one GPU per rank (its local rank).
"""

from __future__ import annotations

import atexit
import datetime
import logging
import os
import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from robustbench_snn import store
from robustbench_snn.engine import BatchOutcomes, Work, run_batches
from robustbench_snn.errors import UserError

logger = logging.getLogger(__name__)

# Ranks wait for rank 0's checks and store; the reliability checks of a big run take long.
WAIT_LIMIT = datetime.timedelta(hours=12)
# Joining the other ranks gives up after this many seconds (a rank without peers fails, not hangs).
JOIN_TIMEOUT_VARIABLE = "RSC_BENCH_JOIN_TIMEOUT"
JOIN_TIMEOUT_S = 60.0
MAX_RANKS = 65_536


@dataclass(frozen=True)
class Ranks:
    """This process's place among the evaluation's processes (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    # the group the ranks gather and share over, with the long WAIT_LIMIT (None: the default group)
    group: object = field(default=None, compare=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def batches(self, count: int) -> list[int]:
        """The batch indices this rank runs: every ``world``-th from its rank."""
        return list(range(self.rank, count, self.world))

    def device(self, device: str) -> str:
        """The device this rank runs on: with several ranks, ``cuda`` means the local rank's GPU."""
        if self.world > 1 and device == "cuda":
            return f"cuda:{self.local_rank}"
        if self.world > 1 and device.startswith("cuda:"):
            raise UserError("with several ranks, pass --device cuda: each rank takes the GPU of its local rank")
        return device

    def run(self, work: Work, partial: store.PartialRun | None, progress: bool) -> tuple[BatchOutcomes | None, float]:
        """This rank's share of ``work``'s batches, gathered on rank 0 (None on the others), and the
        seconds the gathering took; progress is shown by rank 0 alone."""
        batches = run_batches(work, partial, progress and self.is_main, indices=self.batches(work.batches))
        return self.gather(batches)

    def gather(self, batches: BatchOutcomes) -> tuple[BatchOutcomes | None, float]:
        """Every rank's batch outcomes on rank 0 (None on the others), and the seconds spent gathering them."""
        if self.world == 1:
            return batches, 0.0
        started = time.perf_counter()
        parts: list | None = [None] * self.world if self.is_main else None
        dist.gather_object(batches, parts, dst=0, group=self.group)
        merged = None
        if self.is_main:
            merged = BatchOutcomes(
                {index: outcome for part in parts for index, outcome in part.outcomes.items()},
                sum(part.resumed_seconds for part in parts),
            )
        return merged, time.perf_counter() - started

    def share(self, value: object) -> object:
        """Rank 0's ``value``, on every rank."""
        if self.world == 1:
            return value
        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]


def _environment_number(name: str, default: str, low: int, high: int) -> int:
    value = os.environ.get(name, default)
    try:
        number = int(value)
    except ValueError:
        raise UserError(f"${name} is {value!r}, not a whole number") from None
    if not low <= number < high:
        raise UserError(f"${name} is {number}; it must be in [{low}, {high})")
    return number


def _launched() -> Ranks | None:
    """The ranks torchrun (or SLURM with torchrun-style variables) launched this process among,
    from the environment, checked (a malformed value is a `UserError`)."""
    world = _environment_number("WORLD_SIZE", "1", 1, MAX_RANKS + 1)
    if world == 1:
        return None
    rank = _environment_number("RANK", "0", 0, world)
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise UserError(f"WORLD_SIZE is {world} but {' and '.join(missing)} {verb} not set; launch the ranks with torchrun")
    return Ranks(rank, world, _environment_number("LOCAL_RANK", "0", 0, MAX_RANKS))


def _join_timeout() -> datetime.timedelta:
    value = os.environ.get(JOIN_TIMEOUT_VARIABLE)
    try:
        seconds = float(value) if value else JOIN_TIMEOUT_S
    except ValueError:
        raise UserError(f"${JOIN_TIMEOUT_VARIABLE} is {value!r}, not a number of seconds") from None
    if not 0 < seconds < 86_400:
        raise UserError(f"${JOIN_TIMEOUT_VARIABLE} must be between 0 and 86400 seconds, got {seconds:g}")
    return datetime.timedelta(seconds=seconds)


def join(device: str) -> Ranks:
    """This process's ranks, joining the process group on first use (gloo on CPU, NCCL on GPUs)
    within the join timeout ($RSC_BENCH_JOIN_TIMEOUT seconds, default 60)."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    ranks = _launched()
    if ranks is None:
        return Ranks()
    gpu = device.startswith("cuda")
    if gpu:
        torch.cuda.set_device(ranks.local_rank)
    timeout = _join_timeout()
    try:
        dist.init_process_group("nccl" if gpu else "gloo", timeout=timeout)
        group = dist.new_group(timeout=WAIT_LIMIT)
    except (RuntimeError, ValueError) as error:
        where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
        raise UserError(
            f"rank {ranks.rank} of {ranks.world} could not join the other ranks at {where} within "
            f"{timeout.total_seconds():g} s (${JOIN_TIMEOUT_VARIABLE}): {str(error).splitlines()[0]}"
        ) from None
    # a process group still open at exit aborts the process (gloo's threads outlive the interpreter)
    atexit.register(dist.destroy_process_group)
    logger.info("rank %d of %d joined (%s)", ranks.rank, ranks.world, "nccl" if gpu else "gloo")
    return Ranks(ranks.rank, ranks.world, ranks.local_rank, group)


def is_main_process() -> bool:
    """Whether this process prints and stores: rank 0, or the only process."""
    launched = _launched()
    return launched is None or launched.is_main
