"""Sweeps: a grid of evaluations (models x protocols x eps x seeds, as data) and certificates
(models x seeds x sigma), each cell one idempotent `benchmark` or `certify_images` run stored in the
results store, fanned out on Ray when it is installed.

A cell's identity is its evaluation's configuration identity, so a cell whose row is stored is
reused, a cell whose worker died reruns from its last finished batch (Ray retries it), and
concurrent writers never lose or double a row (the store's locked append). Without Ray, or with
one worker, the cells run one after another in this process and store the same rows.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator

from robustbench_snn.config import Strict, describe, load_yaml
from robustbench_snn.errors import UserError

logger = logging.getLogger(__name__)

# The most cells one sweep may hold: a grid beyond it is a mistake, refused before any work.
MAX_CELLS = 100_000


class Certification(Strict):
    """The certification cells of a sweep (as `rsc-bench certify` runs them): one per model, seed
    and ``sigma`` (None: the model's own noise, for models that have noise of their own)."""

    n0: int = Field(default=100, ge=1)
    draws: int = Field(default=1000, ge=1)
    alpha: float = Field(default=0.001, gt=0, lt=0.5)
    sigma: list[float | None] = Field(default_factory=lambda: [None], min_length=1, max_length=MAX_CELLS)
    n_examples: int = Field(default=500, ge=1)
    batch_size: int = Field(default=16, ge=1)

    @field_validator("sigma")
    @classmethod
    def _sigma(cls, sigmas: list[float | None]) -> list[float | None]:
        if any(sigma is not None and not sigma > 0 for sigma in sigmas):
            raise ValueError("a noise level sigma must be positive (or null: the model's own)")
        return sigmas


class Grid(Strict):
    """A sweep file: every combination of its lists is one cell."""

    name: str = "sweep"
    dataset: str | None = None
    models: list[str] | str = Field(description="registered model names, or 'all' (every model of the dataset)")
    attacks: list[str] = Field(default_factory=lambda: ["pgd"], max_length=MAX_CELLS)
    certify: Certification | None = None
    eps: list[float | str | None] = Field(default_factory=lambda: [None], min_length=1, max_length=MAX_CELLS)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, max_length=MAX_CELLS)
    n_examples: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=128, ge=1)
    compile: bool | None = None
    overrides: dict = Field(default_factory=dict)

    @field_validator("models")
    @classmethod
    def _models(cls, models: list[str] | str) -> list[str] | str:
        if isinstance(models, str) and models != "all":
            raise ValueError("give a list of model names, or 'all'")
        if isinstance(models, list) and not models:
            raise ValueError("list at least one model")
        return models

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[int]) -> list[int]:
        if any(not 0 <= seed < 2**63 for seed in seeds):
            raise ValueError("seeds must be in [0, 2^63)")
        return seeds

    @model_validator(mode="after")
    def _some_work(self) -> "Grid":
        if not self.attacks and self.certify is None:
            raise ValueError("list at least one attack, or certify")
        return self


# The attack of a certification cell.
CERTIFY = "certify"


@dataclass(frozen=True)
class Cell:
    """One evaluation of a sweep, or (``attack`` certify) one certificate at noise level ``sigma``."""

    model: str
    attack: str
    eps: float | None
    seed: int
    sigma: float | None = None

    def label(self) -> str:
        eps = "" if self.eps is None else f" eps={self.eps:.4g}"
        sigma = "" if self.sigma is None else f" sigma={self.sigma:g}"
        return f"{self.model} {self.attack}{eps}{sigma} seed {self.seed}"


def load_grid(path: str | os.PathLike) -> Grid:
    """A sweep file, validated, with errors naming the file and the field."""
    from robustbench_snn.attacks import build_protocol, parse_eps

    data = load_yaml(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: a sweep file must be a YAML mapping")
    try:
        grid = Grid.model_validate(data)
    except ValidationError as error:
        raise UserError(f"{path}: invalid sweep\n{describe(error, '(sweep)')}") from None
    grid = grid.model_copy(update={"eps": [None if eps is None else parse_eps(eps) for eps in grid.eps]})
    for attack in grid.attacks:
        build_protocol(attack, grid.overrides)  # an unknown preset or option fails here, before any work
    return grid


def cells(grid: Grid) -> list[Cell]:
    """Every cell of ``grid``, models outermost."""
    from robustbench_snn.registry import find_card, list_cards

    if grid.models == "all":
        if grid.dataset is None:
            raise UserError("models: all needs a dataset")
        cards = list_cards(grid.dataset)
    else:
        cards = [find_card(name) for name in grid.models]
    sigmas = grid.certify.sigma if grid.certify is not None else []
    count = len(cards) * (len(grid.attacks) * len(grid.eps) + len(sigmas)) * len(grid.seeds)
    if count > MAX_CELLS:
        raise UserError(f"the sweep has {count} cells; at most {MAX_CELLS} are allowed (split it into several files)")
    found = []
    for card in cards:
        found += [Cell(card.name, *combination) for combination in itertools.product(grid.attacks, grid.eps, grid.seeds)]
        # sigma null certifies a model's own noise; a model without any is certified only at a given sigma
        own_noise = [sigma for sigma in sigmas if sigma is not None or card.stochastic]
        found += [Cell(card.name, CERTIFY, None, seed, sigma) for sigma, seed in itertools.product(own_noise, grid.seeds)]
    return found


def run_cell(cell: Cell, grid: Grid, results_dir: str | None, data_dir: str | None) -> dict:
    """Evaluate one cell (stored, or reused when its row exists) and summarise its row."""
    from robustbench_snn.evaluation import benchmark
    from robustbench_snn.registry import load_model

    if cell.attack == CERTIFY:
        return certify_cell(cell, grid, results_dir, data_dir)

    overrides = {**grid.overrides, **({"eps": cell.eps} if cell.eps is not None else {})}
    record = benchmark(
        load_model(cell.model, seed=cell.seed),
        dataset=grid.dataset,
        attack=cell.attack,
        n_examples=grid.n_examples,
        seed=cell.seed,
        batch_size=grid.batch_size,
        data_dir=data_dir,
        overrides=overrides,
        store=True,
        results_dir=results_dir,
        compile_lif=grid.compile,
    )
    return _summary(
        cell,
        record.reused,
        record.protocol,
        record.clean_accuracy,
        record.robust_accuracy,
        record.flags,
        record.config_hash,
        record.runtime_s,
    )


def _summary(
    cell: Cell, reused: bool, protocol: str, clean: float, robust: float | None, flags: list[str], identity: str, seconds: float, **extra
) -> dict:
    """What a sweep reports of one finished cell."""
    return {
        **asdict(cell),
        "status": "reused" if reused else "computed",
        "protocol": protocol,
        "clean_accuracy": clean,
        "robust_accuracy": robust,
        "flags": flags,
        "config_hash": identity,
        "runtime_s": seconds,
        **extra,
    }


def certify_cell(cell: Cell, grid: Grid, results_dir: str | None, data_dir: str | None) -> dict:
    """Certify one cell's model (stored, or reused when its row exists) and summarise its row."""
    from robustbench_snn.certify import certify_images
    from robustbench_snn.registry import load_model

    settings = grid.certify
    summary, row = certify_images(
        load_model(cell.model, seed=cell.seed),
        sigma=cell.sigma,
        n0=settings.n0,
        draws=settings.draws,
        alpha=settings.alpha,
        n_examples=settings.n_examples,
        batch_size=settings.batch_size,
        seed=cell.seed,
        data_dir=data_dir,
        results_dir=results_dir,
        progress=False,
        reuse=True,
    )
    row_hash, seconds = row["config_hash"], summary.runtime_s
    return _summary(cell, row["reused"], CERTIFY, summary.smoothed_accuracy, None, [], row_hash, seconds, mean_radius=summary.mean_radius)


def _ray_cell(cell: Cell, grid: Grid, results_dir: str | None, data_dir: str | None) -> dict:
    import torch

    torch.set_num_threads(1)  # one core per worker: the workers share the machine
    return run_cell(cell, grid, results_dir, data_dir)


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def run_sweep(
    grid: Grid,
    *,
    workers: int = 1,
    address: str | None = None,
    results_dir: str | None = None,
    data_dir: str | None = None,
    on_cell: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run every cell of ``grid``: on Ray with ``workers`` parallel cells (a local cluster, or the one
    at ``address``), else one after another here. Returns the cells' summaries in grid order;
    ``on_cell`` is called with each as it finishes."""
    announce = on_cell or (lambda summary: None)
    todo = cells(grid)
    results_dir = str(Path(results_dir).absolute()) if results_dir else None
    data_dir = str(Path(data_dir).absolute()) if data_dir else None
    on_ray = bool(workers > 1 or address)
    if on_ray and not ray_available():
        logger.warning("Ray is not installed (pip install 'robustbench-snn[cluster]'): running the cells one after another")
        on_ray = False
    if not on_ray:
        summaries = []
        for cell in todo:
            summaries.append(run_cell(cell, grid, results_dir, data_dir))
            announce(summaries[-1])
        return summaries
    return _run_on_ray(todo, grid, workers, address, results_dir, data_dir, announce)


def _run_on_ray(
    todo: list[Cell],
    grid: Grid,
    workers: int,
    address: str | None,
    results_dir: str | None,
    data_dir: str | None,
    announce: Callable[[dict], None],
) -> list[dict]:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        options = {"address": address} if address else {"num_cpus": workers, "include_dashboard": False}
        try:
            ray.init(**options, log_to_driver=False, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
        except ConnectionError as error:
            raise UserError(f"cannot reach the Ray cluster at {address}: {str(error).splitlines()[0]}") from None
    try:
        # a worker that dies is retried; the cell resumes from its partial run
        remote = ray.remote(num_cpus=1, max_retries=3)(_ray_cell)
        pending = {remote.remote(cell, grid, results_dir, data_dir): number for number, cell in enumerate(todo)}
        summaries: dict[int, dict] = {}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            number = pending.pop(done[0])
            try:
                summaries[number] = ray.get(done[0])
            except ray.exceptions.RayTaskError as error:
                if isinstance(getattr(error, "cause", None), UserError):
                    raise error.cause from None
                raise
            announce(summaries[number])
        return [summaries[number] for number in range(len(todo))]
    finally:
        if started_here:
            ray.shutdown()
