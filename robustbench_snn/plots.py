"""Figures from results tables: the accuracy-robustness Pareto plot and robust accuracy against eps.

Figures are drawn with matplotlib's object API (no pyplot), so the caller's backend and style are
left as they were. Each family (kind, coding, training) has its own colour from seaborn's
colour-blind palette and its own marker, so they read in colour, in greyscale print and for
colour-blind readers; in the eps plot the models of one family differ by shade and line style.
Text labels are placed by adjustText so they overlap neither each other nor the points, and the
legend sits outside the data. Error bars are 95% Clopper-Pearson intervals of the robust
accuracy from the number of evaluated samples. A row of the user's own store is labelled
"(yours)".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import seaborn as sns
from adjustText import adjust_text
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from robustbench_snn.errors import NoResultsError, UserError
from robustbench_snn.files import replacing
from robustbench_snn.tables import curve_from_zero, pareto_front

FAMILIES = [
    "ANN",
    "adversarially trained ANN",
    "direct SNN",
    "Poisson SNN",
    "RSC-I",
    "RSC-II",
    "E-RSCT",
    "adversarially trained SNN",
]
MARKER_SHAPES = ["s", "X", "D", "^", "o", "v", "P", "p", "h", "<", ">", "d", "H", "8"]
LINE_STYLES = ("-", "--", "-.", ":")
FORMATS = (".png", ".svg", ".pdf")


@functools.cache
def families() -> list[str]:
    """Every family a plot can show, in a fixed order so each keeps its style from plot to plot:
    the zoo's, then those the recipes declare (a published defence's, a plug-in's), then "unregistered"."""
    from robustbench_snn.training.recipes import RECIPES

    declared = [recipe.family for recipe in RECIPES.values() if recipe.family and "{kind}" not in recipe.family]
    return list(dict.fromkeys([*FAMILIES, *declared])) + ["unregistered"]


def _style(family: str) -> dict:
    """The family's colour and marker (a family no recipe declares is drawn as unregistered)."""
    known = families()
    index = known.index(family if family in known else "unregistered")
    palette = sns.color_palette("colorblind", 10) + sns.color_palette("dark", 10)
    marker = "*" if known[index] == "unregistered" else MARKER_SHAPES[index % len(MARKER_SHAPES)]
    return {"color": palette[index % len(palette)], "marker": marker}


def _shades(color: tuple, count: int) -> list[tuple]:
    """``count`` shades of one colour, dark to light, for the models of one family."""
    if count == 1:
        return [color]
    darker = tuple(0.6 * channel for channel in color)
    lighter = tuple(channel + 0.4 * (1 - channel) for channel in color)
    return sns.blend_palette([darker, color, lighter], count)


def _place_labels(axes: Axes, labels: list[Text], x: pd.Series, y: pd.Series) -> None:
    """Move ``labels`` off each other and off the points at ``x``, ``y`` (adjustText), with a thin
    leader line back to their point."""
    if labels:
        adjust_text(
            labels,
            x=list(x),
            y=list(y),
            ax=axes,
            expand=(1.4, 1.8),
            arrowprops={"arrowstyle": "-", "color": "grey", "linewidth": 0.5},
        )


def _model_label(row: pd.Series) -> str:
    return f"{row['model']} (yours)" if row.get("store") == "yours" else row["model"]


def _save(figure: Figure, out: Path) -> Path:
    if out.suffix not in FORMATS:
        raise UserError(f"plot file {out} must end in one of {', '.join(FORMATS)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out) as partial:  # a failed write (a full disk) leaves no stray file
        figure.savefig(partial, dpi=150, bbox_inches="tight", format=out.suffix[1:])
    return out


def _figure(width: float, height: float, panels: int = 1) -> tuple[Figure, list[Axes]]:
    """A figure of ``panels`` side by side, each ``width`` wide."""
    figure = Figure(figsize=(width * panels, height))
    return figure, list(figure.subplots(1, panels, squeeze=False)[0])


def _styled(draw: Callable[..., Path]) -> Callable[..., Path]:
    """Draw in seaborn's whitegrid paper style, set for this figure only."""

    @functools.wraps(draw)
    def styled(*args, **kwargs) -> Path:
        with sns.axes_style("whitegrid"), sns.plotting_context("paper"):
            return draw(*args, **kwargs)

    return styled


def _sigma(model: str, cards: dict) -> float | None:
    card = cards.get(model)
    return card.encoding.noise_level() if card is not None else None


def _attacked(table: pd.DataFrame) -> pd.DataFrame:
    """The rows with a robust accuracy (a `NoResultsError` if none)."""
    points = table.dropna(subset=["robust_accuracy"])
    if points.empty:
        raise NoResultsError("no stored results with an attack match these filters; run `rsc-bench evaluate` first")
    return points


def _finish(figure: Figure, axes: Axes, xlabel: str, title: str, out: Path, legend_beside: Axes | None = None) -> Path:
    """Label ``axes`` and put its legend outside the data, right of ``legend_beside`` (default: ``axes``)."""
    axes.set_xlabel(xlabel)
    axes.set_ylabel("robust accuracy (%)")
    axes.set_title(title)
    handles, names = axes.get_legend_handles_labels()
    (legend_beside or axes).legend(handles, names, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    return _save(figure, out)


def _tradeoff_panel(axes: Axes, points: pd.DataFrame, cards: dict, x: pd.Series, higher_is_better: bool) -> None:
    """Robust accuracy (y) against ``x``, one point per model with its interval, the RSC sigma sweep
    joined and labelled, the user's own rows labelled, the Pareto front (higher robust, and higher
    or lower ``x``) dashed, and flagged results ringed in red."""
    labels = []
    for family, group in points.groupby("family"):
        style = _style(family)
        axes.errorbar(
            x[group.index],
            100 * group["robust_accuracy"],
            yerr=[100 * (group["robust_accuracy"] - group["robust_low"]), 100 * (group["robust_high"] - group["robust_accuracy"])],
            fmt=style["marker"],
            color=style["color"],
            markersize=7,
            capsize=2,
            linewidth=1,
            label=family,
        )
        if family.startswith("RSC"):
            sweep = group.assign(sigma=[_sigma(model, cards) for model in group["model"]]).dropna(subset=["sigma"])
            sweep = sweep[sweep["store"] != "yours"].sort_values("sigma")
            axes.plot(x[sweep.index], 100 * sweep["robust_accuracy"], color=style["color"], linewidth=1)
            labels += [
                axes.text(x[index], 100 * row["robust_accuracy"], f"σ={row['sigma']:g}", fontsize=7, color=style["color"])
                for index, row in sweep.iterrows()
            ]
        labels += [
            axes.text(x[index], 100 * row["robust_accuracy"], _model_label(row), fontsize=7, color=style["color"])
            for index, row in group[group["store"] == "yours"].iterrows()
        ]
    sign = 1 if higher_is_better else -1
    coordinates = [(sign * value, robust) for value, robust in zip(x[points.index], points["robust_accuracy"])]
    front = [coordinates[index] for index in pareto_front(coordinates)]
    axes.step(
        [sign * value for value, _ in front],
        [100 * robust for _, robust in front],
        where="post",
        color="black",
        linestyle="--",
        linewidth=1,
        label="Pareto front",
    )
    flagged = points[points["flags"].map(bool)]
    if not flagged.empty:
        axes.scatter(
            x[flagged.index],
            100 * flagged["robust_accuracy"],
            s=160,
            facecolors="none",
            edgecolors="red",
            linewidths=1,
            label="potentially unreliable",
        )
    _place_labels(axes, labels, x[points.index], 100 * points["robust_accuracy"])


@_styled
def plot_tradeoff(table: pd.DataFrame, cards: dict, out: Path, title: str) -> Path:
    """Clean (x) against robust (y) accuracy, one point per model, with the Pareto front and RSC sigma
    curves; when the rows carry energy, a second panel of robust accuracy against the estimated
    energy per image (log scale; the front now favours less energy)."""
    points = _attacked(table)
    costed = points.dropna(subset=["energy_pj"]) if "energy_pj" in points else points.iloc[:0]
    figure, (axes, *beside) = _figure(6.5, 4.8, panels=1 if costed.empty else 2)
    _tradeoff_panel(axes, points, cards, 100 * points["clean_accuracy"], higher_is_better=True)
    for energy_axes in beside:
        energy_axes.set_xscale("log")
        # Labelled ticks at 1, 2 and 5 of each decade only: labels on every minor tick collide.
        energy_axes.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        energy_axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        energy_axes.xaxis.set_minor_formatter(NullFormatter())
        _tradeoff_panel(energy_axes, costed, cards, costed["energy_pj"] / 1e6, higher_is_better=False)
        energy_axes.set_xlabel("estimated energy per image (µJ, log scale)")
        energy_axes.set_ylabel("robust accuracy (%)")
        energy_axes.set_title("against energy: SynOps × 0.9 pJ + MACs × 4.6 pJ (an estimate)")
    return _finish(figure, axes, "clean accuracy (%)", title, out, legend_beside=beside[-1] if beside else None)


@_styled
def plot_eps(table: pd.DataFrame, out: Path, title: str) -> Path:
    """Robust accuracy against eps, one line per model and protocol (A(0) is the clean accuracy)."""
    curves = _attacked(table)
    figure, (axes,) = _figure(6.5, 4.8)
    protocols = sorted(curves["protocol"].unique())
    curves = curves.assign(label=[_model_label(row) for _, row in curves.iterrows()])
    for family, members in curves.groupby("family"):
        style = _style(family)
        names = sorted(members["label"].unique())
        shades = _shades(style["color"], len(names))
        for (name, protocol), curve in members.groupby(["label", "protocol"]):
            position = names.index(name)
            eps, accuracy = curve_from_zero(curve)
            axes.plot(
                eps,
                [100 * value for value in accuracy],
                marker=style["marker"],
                markersize=5,
                color=shades[position],
                linestyle=LINE_STYLES[(position + protocols.index(protocol)) % len(LINE_STYLES)],
                linewidth=1.2,
                label=name if len(protocols) == 1 else f"{name} ({protocol})",
            )
    return _finish(figure, axes, "eps", title, out)


@_styled
def plot_certified(curve: dict[str, float], norm: str, out: Path, title: str) -> Path:
    """Certified accuracy against the certified radius (one randomized-smoothing certificate)."""
    figure, (axes,) = _figure(5.5, 3.8)
    radii = sorted(curve, key=float)
    axes.plot([float(radius) for radius in radii], [100 * curve[radius] for radius in radii], marker="o", drawstyle="steps-post")
    axes.set_xlabel(f"{norm} radius")
    axes.set_ylabel("certified accuracy (%)")
    axes.set_title(title)
    return _save(figure, out)
