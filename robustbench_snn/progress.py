"""Progress a person can watch on long work: a bar over a run's images that moves with every
attack member inside a batch and shows the clean and robust counts, a one-time estimate of the
run's length from its first batch, and a bar for the reliability checks.

Shown only when asked for (``progress=True``); written to stderr by tqdm.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from tqdm import tqdm

# Runs estimated to take longer than this say so once, after their first batch.
ANNOUNCE_AFTER_S = 120.0


# Where a long attack member reports the share of itself done (set around each member by the runner).
_STAGE_REPORT: ContextVar[Callable[[float], None] | None] = ContextVar("stage_report", default=None)


@contextmanager
def reporting_stages(report: Callable[[float], None]) -> Iterator[None]:
    """Inside the block, `stage_done` calls ``report`` with the share of the running member done."""
    token = _STAGE_REPORT.set(report)
    try:
        yield
    finally:
        _STAGE_REPORT.reset(token)


def stage_done(share: float) -> None:
    """A member whose stages are long (AutoAttack's) says how much of it is done, so the bar moves."""
    report = _STAGE_REPORT.get()
    if report is not None:
        report(share)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


class RunProgress:
    """The bar of one evaluation: ``n_images`` split in batches, each done in ``parts`` steps
    (the clean decision and each member)."""

    def __init__(self, label: str, n_images: int, parts: int, enabled: bool) -> None:
        self.bar = tqdm(
            total=n_images,
            desc=label,
            unit="img",
            disable=not enabled,
            bar_format="{l_bar}{bar}| {n:.0f}/{total} [{elapsed}<{remaining}{postfix}]",
        )
        self.parts = parts
        self.start = 0.0
        self.announced = False

    def __enter__(self) -> "RunProgress":
        return self

    def __exit__(self, *error) -> None:
        self.bar.close()

    def within(self, size: int) -> Callable[[int], None]:
        """The callback of a batch of ``size`` images: called with the parts done so far."""
        self.start = self.bar.n

        def advance(done: int) -> None:
            self.bar.update(self.start + size * min(done + 1, self.parts) / self.parts - self.bar.n)

        return advance

    def finished(self, size: int, counts: dict[str, int], batch_seconds: float | None, batches_left: int) -> None:
        """A batch is done: complete its share, show the counts, and estimate the rest once."""
        self.bar.update(self.start + size - self.bar.n)
        self.bar.set_postfix(counts)
        if batch_seconds is None or self.announced or self.bar.disable:
            return
        self.announced = True
        left = batch_seconds * batches_left
        if left > ANNOUNCE_AFTER_S:
            self.bar.write(
                f"estimated time left: about {_duration(left)} (from the first batch, {batch_seconds:.0f} s), "
                "plus the reliability checks where the protocol has them",
                file=sys.stderr,  # never into stdout, where --json writes the record
            )


class CheckProgress:
    """The bar of the reliability checks: one step per check attack, named as it runs."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = tqdm(total=total, desc="checks", unit="attack", disable=not enabled)
        self.started = False

    def __call__(self, label: str) -> None:
        if self.started:
            self.bar.update(1)
        self.started = True
        self.bar.set_postfix_str(label)

    def __enter__(self) -> "CheckProgress":
        return self

    def __exit__(self, *error) -> None:
        if self.started:
            self.bar.update(1)
        self.bar.close()
