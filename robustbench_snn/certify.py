"""Randomized-smoothing certificates: a provable robustness radius for each test image.

The smoothed classifier ``g(x) = argmax_c P(f(noise(x)) = c)`` predicts the class the base
network gives most often over draws of its input noise. Following Cohen et al. (2019): ``n0``
draws pick the class c; ``n`` further draws count how often the network gives c, and the
one-sided Clopper-Pearson lower bound ``p_A`` at level ``alpha`` bounds its probability. If
``p_A <= 1/2`` the prediction abstains; otherwise no perturbation within the radius below can
change ``g``'s prediction (with probability at least ``1 - alpha`` over the sampling).

Which certificate applies depends on the noise:
- RSC-I (one Gaussian draw shared by all T steps) is Gaussian smoothing of the base SNN:
  L2 radius ``sigma * Phi^-1(p_A)``. So is an ANN (or direct SNN) with added noise (``--sigma``).
- RSC-II (a fresh draw per step): the SNN sees ``(x + e_1, ..., x + e_T)``, Gaussian smoothing of
  a network on T copies of x, and a shift ``delta`` of x moves that point by ``sqrt(T) ||delta||_2``;
  hence L2 radius ``sigma * Phi^-1(p_A) / sqrt(T)``.
- Poisson (rate) coding, after Mukhoty et al. (ICLR 2024): with ``s_t ~ Bernoulli(x)``
  independent over steps and pixels, the total-variation distance between the spike
  distributions of x and x' is at most ``T ||x - x'||_1`` (one Bernoulli pair is ``|x_i - x'_i|``
  apart; product distributions add at most their distances), and a class probability moves by at
  most that distance. ``g`` keeps its prediction while ``p_A - T ||delta||_1 > 1/2``: L1 radius
  ``(p_A - 1/2) / T``. It assumes x and x + delta both lie in [0, 1] (pixel intensities).
- A deterministic model without added noise (direct coding, plain ANN) has no certificate.

`SmoothedClassifier` is the same smoothed classifier as a model that the attack runner can
attack: its forward is one noisy draw of the base network (the runner's EOT then averages the
gradient over the smoothing noise), and it decides by majority vote over many draws.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from scipy.stats import norm as gaussian
from torch import nn
from torch.utils.data import TensorDataset

from robustbench_snn import store as store_
from robustbench_snn.attacks.primitives import draw_chunks, repeated
from robustbench_snn.engine import ImageBatches, Work, run_batches
from robustbench_snn.errors import UserError
from robustbench_snn.evaluation import distributed
from robustbench_snn.evaluation.plan import model_hash
from robustbench_snn.evaluation.stored_run import StoredRun
from robustbench_snn.models.encoders import Encoder
from robustbench_snn.models.interface import reseed, row_name
from robustbench_snn.seeds import batch_seed
from robustbench_snn.tables import clopper_pearson

logger = logging.getLogger(__name__)

# Bumped by any change that alters a number certification makes (part of a certificate's identity).
# Version 2: each batch's noise is seeded by its index (resumable, shardable), not one stream.
CERTIFY_VERSION = 2

# Counts of the base network's predictions over draws: (images [B, ...], draws) -> counts [B, classes].
Sampler = Callable[[torch.Tensor, int], torch.Tensor]
ABSTAIN = -1


@dataclass(frozen=True)
class Certificate:
    """The radius formula of one smoothing distribution."""

    norm: str
    sigma: float | None
    timesteps: int
    kind: str

    def radius(self, p_lower: float) -> float:
        """The certified radius for a lower bound ``p_lower`` on the top class's probability (0 if it abstains)."""
        if p_lower <= 0.5:
            return 0.0
        if self.norm == "L1":
            return (p_lower - 0.5) / self.timesteps
        scale = math.sqrt(self.timesteps) if self.kind == "rsc-II" else 1.0
        return self.sigma * float(gaussian.ppf(p_lower)) / scale

    def largest_radius(self, draws: int, alpha: float) -> float:
        """The largest radius any image can be certified at with ``draws`` draws at level ``alpha``
        (every draw on the top class): a radius beyond it is out of the certificate's reach, whatever the model."""
        return self.radius(clopper_pearson(draws, draws, level=1 - 2 * alpha)[0])


class GaussianNoise(nn.Module):
    """A base classifier that sees its input plus N(0, sigma^2) noise, drawn from its own generator."""

    stochastic = True

    def __init__(self, model: nn.Module, sigma: float, seed: int = 0) -> None:
        super().__init__()
        self.model, self.sigma = model, sigma
        self.generator = torch.Generator().manual_seed(seed)

    def seed(self, seed: int) -> None:
        """Restart the noise stream at ``seed``."""
        self.generator.manual_seed(seed)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(images.shape, generator=self.generator).to(images)
        return self.model(images + self.sigma * noise)


def smoothing_for(model: nn.Module, sigma: float | None = None, seed: int = 0) -> tuple[nn.Module, Certificate]:
    """The noisy base classifier to sample and its certificate.

    ``sigma`` sets an RSC model's noise level, or adds Gaussian noise to a model without any.
    """
    encoder = getattr(model, "encoder", None)
    own = encoder.smoothing_certificate() if isinstance(encoder, Encoder) else None
    if own is not None:
        if sigma is not None:
            # on a copy: the caller's model keeps its own noise level (an encoder whose noise has no level refuses)
            model = copy.deepcopy(model)
            model.encoder.with_noise_level(sigma)
        reseed(model, seed)
        norm, level, name = model.encoder.smoothing_certificate()
        return model, Certificate(norm, level, getattr(model, "timesteps", 1), name)
    if sigma is None or sigma <= 0:
        raise UserError(
            "a model without input noise has no randomized-smoothing certificate; pass --sigma S to certify it "
            "smoothed with Gaussian noise of level S"
        )
    return GaussianNoise(model, sigma, seed), Certificate("L2", float(sigma), 1, "gaussian")


def sampler_for(noisy: nn.Module, num_classes: int) -> Sampler:
    @torch.inference_mode()
    def sample(images: torch.Tensor, draws: int) -> torch.Tensor:
        counts = torch.zeros(len(images), num_classes, dtype=torch.long)
        for count in draw_chunks(draws, images):
            predictions = noisy(repeated(images, count)).argmax(1).view(count, len(images)).cpu()
            counts += torch.nn.functional.one_hot(predictions, num_classes).sum(0)
        return counts

    return sample


@dataclass
class CertifiedSample:
    label: int
    prediction: int
    p_lower: float
    radius: float

    @property
    def correct(self) -> bool:
        return self.prediction == self.label


def certify_batch(
    sample: Sampler, certificate: Certificate, images: torch.Tensor, labels: torch.Tensor, n0: int, n: int, alpha: float
) -> list[CertifiedSample]:
    """Cohen et al.'s CERTIFY for each image: select with ``n0`` draws, bound with ``n`` fresh ones."""
    chosen = sample(images, n0).argmax(1)
    counts = sample(images, n)
    results = []
    for label, top, row in zip(labels.tolist(), chosen.tolist(), counts):
        p_lower = clopper_pearson(int(row[top]), n, level=1 - 2 * alpha)[0]
        radius = certificate.radius(p_lower)
        results.append(CertifiedSample(label, top if p_lower > 0.5 else ABSTAIN, p_lower, radius))
    return results


def certified_accuracy(samples: list[CertifiedSample], radius: float) -> float:
    """Share of samples predicted correctly with a certified radius of at least ``radius``."""
    return sum(sample.correct and sample.radius >= radius for sample in samples) / len(samples)


@dataclass
class CertificationSummary:
    model: str
    dataset: str
    norm: str
    certificate: str
    sigma: float | None
    timesteps: int
    n0: int
    n: int
    alpha: float
    seed: int
    n_examples: int
    abstained: float
    smoothed_accuracy: float
    mean_radius: float
    curve: dict[str, float]
    runtime_s: float
    draws_per_second: float
    samples: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict) -> "CertificationSummary":
        """The summary a stored certificate row holds (its per-sample results are not stored)."""
        return cls(**{name: row[name] for name in cls.__dataclass_fields__ if name != "samples"})


def radius_grid(certificate: Certificate) -> list[float]:
    """Radii the certified-accuracy curve is reported at."""
    if certificate.norm == "L1":
        return [0.0, 0.01, 0.02, 0.05, 0.1]
    return [0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]


def summarise(
    model_name: str,
    dataset: str,
    certificate: Certificate,
    samples: list[CertifiedSample],
    *,
    n0: int,
    n: int,
    alpha: float,
    seed: int,
    runtime_s: float,
) -> CertificationSummary:
    total = len(samples)
    return CertificationSummary(
        model=model_name,
        dataset=dataset,
        norm=certificate.norm,
        certificate=certificate.kind,
        sigma=certificate.sigma,
        timesteps=certificate.timesteps,
        n0=n0,
        n=n,
        alpha=alpha,
        seed=seed,
        n_examples=total,
        abstained=sum(sample.prediction == ABSTAIN for sample in samples) / total,
        smoothed_accuracy=certified_accuracy(samples, 0.0),
        mean_radius=sum(sample.radius for sample in samples if sample.correct) / total,
        curve={f"{radius:g}": certified_accuracy(samples, radius) for radius in radius_grid(certificate)},
        runtime_s=round(runtime_s, 3),
        draws_per_second=round(total * (n0 + n) / max(runtime_s, 1e-9), 1),
        samples=[asdict(sample) for sample in samples],
    )


class SmoothedClassifier(nn.Module):
    """The smoothed classifier ``g`` of a noisy model, to attack and to certify on the same images.

    ``forward`` is one draw of the base network under the smoothing noise, so gradient attacks
    with EOT target ``E[f(noise(x))]``; ``predict`` is ``g`` itself, the majority class over
    ``votes`` draws; ``certify`` runs CERTIFY with ``n0``, ``n`` and ``alpha``.
    """

    stochastic = True

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        *,
        sigma: float | None = None,
        seed: int = 0,
        votes: int = 100,
        n0: int = 100,
        n: int = 1000,
        alpha: float = 0.001,
    ) -> None:
        super().__init__()
        if not 0 < alpha < 0.5:
            raise UserError(f"alpha must be in (0, 0.5), got {alpha}")
        self.noisy, self.certificate = smoothing_for(model.eval(), sigma, seed)
        # the network that runs: the model itself (or its copy at another noise level), or the one under added noise
        self.base = self.noisy.model if isinstance(self.noisy, GaussianNoise) else self.noisy
        self.sample = sampler_for(self.noisy, num_classes)
        self.votes, self.n0, self.n, self.alpha = votes, n0, n, alpha
        self.card = getattr(model, "card", None)
        self.checkpoint_sha256 = getattr(model, "checkpoint_sha256", None)

    @property
    def encoder(self) -> nn.Module:
        """The base's own encoder (its estimators and coding attacks), or the added Gaussian noise."""
        return getattr(self.noisy, "encoder", self.noisy)

    def seed(self, seed: int) -> None:
        """Restart the smoothing noise: the base's own randomness, or the added Gaussian noise."""
        self.noisy.seed(seed)

    @property
    def spiking_layers(self) -> list:
        return getattr(self.base, "spiking_layers", [])

    def using_gradient(self, gradient):
        return self.base.using_gradient(gradient)

    def settings(self) -> dict:
        """What defines this smoothed classifier, for result rows."""
        return {
            "certificate": self.certificate.kind,
            "norm": self.certificate.norm,
            "sigma": self.certificate.sigma,
            "votes": self.votes,
            "n0": self.n0,
            "n": self.n,
            "alpha": self.alpha,
        }

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.noisy(images)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """``g(x)``: the class the base network gives most often over ``votes`` draws."""
        return self.sample(images, self.votes).argmax(1).to(images.device)

    def certify(self, images: torch.Tensor, labels: torch.Tensor) -> list[CertifiedSample]:
        return certify_batch(self.sample, self.certificate, images, labels, self.n0, self.n, self.alpha)


@dataclass
class CertifyRun:
    """Certification as the evaluation engine's work: each batch's noise seeded by its index, so a
    batch's certificates are the same in a resumed run or on another rank."""

    smoothed: SmoothedClassifier
    images: ImageBatches
    seed: int

    def run_batch(self, index: int, on_part: Callable[[int], None]) -> dict:
        started = time.perf_counter()
        self.smoothed.seed(batch_seed(self.seed, index))
        samples = self.smoothed.certify(*self.images[index])
        on_part(0)
        return {"samples": [asdict(sample) for sample in samples], "seconds": time.perf_counter() - started}

    def work(self) -> Work:
        return Work("certify", self.images.lengths(), 1, self.run_batch, correct_counts)

    def summary(self, outcomes: list[dict], model: nn.Module, dataset: str, runtime_s: float) -> CertificationSummary:
        samples = [CertifiedSample(**sample) for part in outcomes for sample in part["samples"]]
        name, smoothed = row_name(model), self.smoothed
        return summarise(
            name,
            dataset,
            smoothed.certificate,
            samples,
            n0=smoothed.n0,
            n=smoothed.n,
            alpha=smoothed.alpha,
            seed=self.seed,
            runtime_s=runtime_s,
        )


def correct_counts(outcomes: list[dict]) -> dict[str, int]:
    """The samples predicted correctly so far (certified at radius 0), shown on the progress bar."""
    return {"correct": sum(sample["prediction"] == sample["label"] for part in outcomes for sample in part["samples"])}


def certify_model(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    dataset: str,
    num_classes: int,
    sigma: float | None = None,
    n0: int = 100,
    n: int = 10000,
    alpha: float = 0.001,
    seed: int = 0,
    batch_size: int = 16,
) -> CertificationSummary:
    """Certify each image, in batches whose noise is seeded by the batch's index (`CertifyRun`)."""
    smoothed = SmoothedClassifier(model, num_classes, sigma=sigma, seed=seed, n0=n0, n=n, alpha=alpha)
    run = CertifyRun(smoothed, ImageBatches(TensorDataset(images, labels), batch_size, images.device), seed)
    started = time.perf_counter()
    outcomes = run_batches(run.work(), None, progress=False).in_order()
    return run.summary(outcomes, model, dataset, time.perf_counter() - started)


def _versions_used() -> dict:
    """The component versions a certificate depends on: the evaluation's, and the certificate's own."""
    from robustbench_snn.provenance import components

    return {**components(), "certify": CERTIFY_VERSION}


def _identity(model: nn.Module, smoothed: SmoothedClassifier, n_images: int, batch_size: int, seed: int, versions_used: dict) -> str:
    """A certificate's identity: what it certified, how, and the versions of the code that computes it."""
    described = {"model": model_hash(model), "settings": smoothed.settings(), "n": n_images, "batch_size": batch_size, "seed": seed}
    return "certify-" + store_.config_hash({**described, "components": versions_used})


def _certification(
    model: nn.Module, sigma: float | None, n0: int, draws: int, alpha: float, n_examples: int, seed: int, data_dir: str | None
):
    """What a certificate of ``model`` certifies and with what: its dataset, images and smoothed classifier."""
    from robustbench_snn.data import dataset_info, first_examples, load_dataset

    info = dataset_info(model.card.dataset)
    examples = first_examples(load_dataset(info.name, "test", data_dir), n_examples)
    smoothed = SmoothedClassifier(model, info.num_classes, sigma=sigma, seed=seed, n0=n0, n=draws, alpha=alpha)
    return info, examples, smoothed


def certificate_identity(
    model: nn.Module,
    *,
    sigma: float | None = None,
    n0: int = 100,
    draws: int = 10000,
    alpha: float = 0.001,
    n_examples: int = 500,
    batch_size: int = 16,
    seed: int = 0,
    data_dir: str | None = None,
) -> str:
    """The identity `certify_images` would give this certificate with the code of this checkout,
    without certifying (a stored row of another identity would not be reused)."""
    _, examples, smoothed = _certification(model, sigma, n0, draws, alpha, n_examples, seed, data_dir)
    return _identity(model, smoothed, len(examples), batch_size, seed, _versions_used())


def certify_images(
    model: nn.Module,
    *,
    sigma: float | None = None,
    n0: int = 100,
    draws: int = 10000,
    alpha: float = 0.001,
    n_examples: int = 500,
    batch_size: int = 16,
    seed: int = 0,
    data_dir: str | None = None,
    device: str = "cpu",
    store: bool = True,
    results_dir: str | None = None,
    progress: bool = True,
    reuse: bool = False,
) -> tuple[CertificationSummary, dict]:
    """Certify a registered model on the first ``n_examples`` test images of its dataset.

    Returns the summary and its row (protocol ``certify``, with provenance and its identity,
    ``config_hash``), stored in the user's results folder when ``store``; with ``reuse`` a stored
    row of the same identity is returned instead of certifying again (without per-sample results).
    Run by the evaluation's engine: with ``store`` a killed run resumes from its last finished
    batch, and launched by ``torchrun`` the batches are shared among the ranks (rank 0 stores the
    row; every rank gets the summary and the row).
    """
    from robustbench_snn.provenance import stamp

    ranks = distributed.join(str(device))
    device = ranks.device(str(device))
    info, examples, smoothed = _certification(model.to(device), sigma, n0, draws, alpha, n_examples, seed, data_dir)
    run = CertifyRun(smoothed, ImageBatches(examples, batch_size, device), seed)
    versions_used = _versions_used()
    identity = _identity(model, smoothed, len(examples), batch_size, seed, versions_used)
    stored_run = StoredRun(ranks, keep=store, results_dir=results_dir)
    stored = stored_run.stored_row(info.name, identity) if reuse else None
    if stored is not None:
        logger.info("reusing stored certificate %s", identity)
        return CertificationSummary.from_row(stored), {**stored, "reused": True}
    stored_run.check_folder()
    batches, seconds, _ = stored_run.run(identity, run.work(), progress)
    summary = row = None
    if ranks.is_main:
        summary = run.summary(batches.in_order(), model, info.name, seconds)
        row = {key: value for key, value in summary.as_dict().items() if key != "samples"}
        row.update(protocol="certify", batch_size=batch_size, checkpoint_sha256=model.checkpoint_sha256, config_hash=identity)
        row.update(reused=False, **stamp(versions_used))
        stored_run.finish(lambda: store_.append_row(row, results_dir))
    return ranks.share((summary, row))
