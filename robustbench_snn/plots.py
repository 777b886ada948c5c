"""Figures from results tables: the accuracy-robustness Pareto plot and robust accuracy against eps.

Figures are drawn with matplotlib's object API (no pyplot), so the caller's backend and style are
left as they were. Each family (kind, coding, training) has its own colour (`PALETTE`, fifteen
colours far apart) and its own marker, so they read in colour, in greyscale print and for
colour-blind readers; in the eps plot the models of one family differ by shade and line style.
Text labels are placed where they overlap no marker, error bar or other label (`_place_labels`),
the legend sits outside the data in the families' order, and when a few models reach far above
the rest the trade-off plot's robust axis gives the cluster below two thirds of its height. Error
bars are 95% Clopper-Pearson intervals of the robust accuracy from the number of evaluated
samples. A row of the user's own store is labelled "(yours)".
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter
from matplotlib.transforms import Bbox

from robustbench_snn.defences import RECIPES
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
# One colour per family in `families()` order: baselines black and grey, the codings, then the
# defences; every two at least 27 apart in CIE76 (a test checks it), where seaborn's colour-blind
# palette put RSC-I and E-RSCT, and FEEL-SNN and the direct SNN, in look-alike shades.
PALETTE = [
    "#000000",
    "#7f7f7f",
    "#1f77b4",
    "#ff7f0e",
    "#9467bd",
    "#e377c2",
    "#17becf",
    "#d62728",
    "#800000",
    "#e6ab02",
    "#2ca02c",
    "#8c564b",
    "#bcbd22",
    "#00635a",
    "#08306b",
]
LINE_STYLES = ("-", "--", "-.", ":")
FORMATS = (".png", ".svg", ".pdf")


@functools.cache
def families() -> list[str]:
    """Every family a plot can show, in a fixed order so each keeps its style from plot to plot:
    the zoo's, then those the recipes declare (a published defence's, a plug-in's), then "unregistered"."""
    declared = [recipe.family for recipe in RECIPES.values() if recipe.family and "{kind}" not in recipe.family]
    return list(dict.fromkeys([*FAMILIES, *declared])) + ["unregistered"]


def _style(family: str) -> dict:
    """The family's colour and marker (a family no recipe declares is drawn as unregistered)."""
    known = families()
    index = known.index(family if family in known else "unregistered")
    marker = "*" if known[index] == "unregistered" else MARKER_SHAPES[index % len(MARKER_SHAPES)]
    return {"color": PALETTE[index % len(PALETTE)], "marker": marker}


def _shades(color: str, count: int) -> list[tuple]:
    """``count`` shades of one colour, dark to light, for the models of one family."""
    if count == 1:
        return [color]
    rgb = sns.color_palette([color])[0]
    darker = tuple(0.6 * channel for channel in rgb)
    lighter = tuple(channel + 0.4 * (1 - channel) for channel in rgb)
    return sns.blend_palette([darker, rgb, lighter], count)


# Where a label may sit around its point, nearest first: (dx, dy) in points and its alignment.
_DIRECTIONS = (
    (1, 0, "left", "center"),
    (0, 1, "center", "bottom"),
    (-1, 0, "right", "center"),
    (0, -1, "center", "top"),
    (1, 1, "left", "bottom"),
    (-1, 1, "right", "bottom"),
    (-1, -1, "right", "top"),
    (1, -1, "left", "top"),
)
_LABEL_DISTANCES = (6, 10, 16, 24, 34, 46, 60)
_NEIGHBOUR_MARGIN = 6  # pixels


def _overlap(box: Bbox, other: Bbox) -> float:
    width = min(box.x1, other.x1) - max(box.x0, other.x0)
    height = min(box.y1, other.y1) - max(box.y0, other.y0)
    return max(width, 0.0) * max(height, 0.0)


def _outside(box: Bbox, area: Bbox) -> float:
    return box.width * box.height - _overlap(box, area)


def _place_labels(axes: Axes, labels: list[tuple[float, float, str, str]], obstacles: list[Bbox]) -> None:
    """Annotate each (x, y, text, colour) at the nearest place around its point where its text
    overlaps no box of ``obstacles`` (markers, error bars; display units), no label placed before it
    and nothing outside the axes, keeping a margin from every point but its own (a label close to
    another point reads as that point's); a label set apart by more than the nearest distance gets a
    thin leader line. Where no place is free, the least overlapping one. The axes' limits must be final."""
    renderer = axes.figure.canvas.get_renderer()
    area, placed = axes.get_window_extent(renderer), []
    for x, y, text, color in labels:
        own = axes.transData.transform((x, y))
        neighbours = [box.padded(_NEIGHBOUR_MARGIN) for box in obstacles if not box.contains(*own)]
        best = None
        for distance, (dx, dy, horizontal, vertical) in ((d, direction) for d in _LABEL_DISTANCES for direction in _DIRECTIONS):
            offset = (distance * dx / math.hypot(dx, dy), distance * dy / math.hypot(dx, dy))
            box = _text_box(axes, renderer, text, (x, y), offset, horizontal, vertical).padded(1)
            cost = (
                sum(_overlap(box, other) for other in [*obstacles, *placed]) + _outside(box, area),
                sum(_overlap(box, other) for other in neighbours),
            )
            if best is None or cost < best[0]:
                best = (cost, distance, offset, horizontal, vertical)
            if cost == (0, 0):
                break
        _, distance, offset, horizontal, vertical = best
        leader = {"arrowprops": {"arrowstyle": "-", "color": "grey", "linewidth": 0.5}} if distance > _LABEL_DISTANCES[0] else {}
        label = axes.annotate(
            text, (x, y), xytext=offset, textcoords="offset points", ha=horizontal, va=vertical, fontsize=7, color=color, **leader
        )
        placed.append(label.get_window_extent(renderer))


def _text_box(
    axes: Axes, renderer, text: str, point: tuple[float, float], offset: tuple[float, float], horizontal: str, vertical: str
) -> Bbox:
    """Where ``text`` would sit, in display units, annotated at ``point`` with ``offset`` (points) and that alignment."""
    probe = axes.annotate(text, point, xytext=offset, textcoords="offset points", ha=horizontal, va=vertical, fontsize=7)
    box = probe.get_window_extent(renderer)
    probe.remove()
    return box


def _marker_boxes(axes: Axes, x: pd.Series, y: pd.Series, size_points: float) -> list[Bbox]:
    """The boxes the markers at ``x``, ``y`` (data) cover, in display units, with a pixel to spare."""
    half = size_points * axes.figure.dpi / 72 / 2 + 1
    centres = axes.transData.transform(np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)]))
    return [Bbox([[cx - half, cy - half], [cx + half, cy + half]]) for cx, cy in centres]


def _bar_boxes(axes: Axes, x: pd.Series, low: pd.Series, high: pd.Series) -> list[Bbox]:
    """The boxes the vertical error bars from ``low`` to ``high`` at ``x`` (data) cover, caps included (as wide as they are
    long, since a cap is drawn as a marker of that size), in display units."""
    half = 2 * axes.figure.dpi / 72 + 1  # the caps: capsize 2 points
    bottoms = axes.transData.transform(np.column_stack([np.asarray(x, dtype=float), np.asarray(low, dtype=float)]))
    tops = axes.transData.transform(np.column_stack([np.asarray(x, dtype=float), np.asarray(high, dtype=float)]))
    return [Bbox([[bx - half, by - half], [bx + half, ty + half]]) for (bx, by), (_, ty) in zip(bottoms, tops)]


def _stretch_cluster(axes: Axes, robust_high: pd.Series) -> str:
    """When a few models reach far above the rest (the largest upper bound more than twice the
    80th percentile's), give robust accuracies below a knee (that percentile, up to a multiple of 5)
    the lower two thirds of the height, so the cluster is readable; the knee is drawn dotted. The
    axis label to use, which says so."""
    upper = 100 * robust_high
    knee = 5 * math.ceil(max(upper.quantile(0.8), 1) / 5)
    if upper.max() <= 2 * knee:
        return "robust accuracy (%)"
    share = 2 / 3

    def forward(values):
        values = np.asarray(values, dtype=float)
        return np.where(values <= knee, values * share / knee, share + (values - knee) * (1 - share) / (100 - knee))

    def inverse(values):
        values = np.asarray(values, dtype=float)
        return np.where(values <= share, values * knee / share, knee + (values - share) * (100 - knee) / (1 - share))

    axes.set_yscale("function", functions=(forward, inverse))
    below = list(range(0, knee + 1, 5 if knee <= 30 else 10))
    above = [tick for tick in range(knee + 20, 101, 20) if tick <= upper.max() + 10]
    axes.yaxis.set_major_locator(FixedLocator([*below, *above]))
    axes.axhline(knee, color="grey", linewidth=0.8, linestyle=":")
    return f"robust accuracy (%), ×{(share / knee) / ((1 - share) / (100 - knee)):.0f} below {knee} (dotted)"


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
    """A figure of ``panels`` side by side, each ``width`` wide, on an Agg canvas (labels are placed by measuring their text)."""
    figure = Figure(figsize=(width * panels, height))
    FigureCanvasAgg(figure)
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


def _finish(
    figure: Figure, axes: Axes, xlabel: str, title: str, out: Path, legend_beside: Axes | None = None, ylabel: str = "robust accuracy (%)"
) -> Path:
    """Label ``axes`` and put its legend outside the data, right of ``legend_beside`` (default: ``axes``)."""
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    # matplotlib lists error bars after lines: put the families first, in their order, then the rest as drawn.
    entries = list(zip(*axes.get_legend_handles_labels()))
    order = families()
    entries.sort(key=lambda entry: order.index(entry[1]) if entry[1] in order else len(order))
    handles, names = ([handle for handle, _ in entries], [name for _, name in entries])
    (legend_beside or axes).legend(handles, names, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    return _save(figure, out)


def _in_family_order(points: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """``points`` grouped by family in `families()` order (baselines, codings, defences), the legend's order."""
    known = families()
    groups = dict(tuple(points.groupby("family")))
    return sorted(groups.items(), key=lambda item: known.index(item[0]) if item[0] in known else len(known))


MARKER_SIZE = 7


def _tradeoff_panel(axes: Axes, points: pd.DataFrame, cards: dict, x: pd.Series, higher_is_better: bool) -> str:
    """Robust accuracy (y) against ``x``, one point per model with its interval, the RSC sigma sweep
    joined and labelled, the user's own rows labelled, the Pareto front (higher robust, and higher
    or lower ``x``) dashed, and flagged results ringed in red. The robust axis's label."""
    labels = []
    for family, group in _in_family_order(points):
        style = _style(family)
        axes.errorbar(
            x[group.index],
            100 * group["robust_accuracy"],
            yerr=[100 * (group["robust_accuracy"] - group["robust_low"]), 100 * (group["robust_high"] - group["robust_accuracy"])],
            fmt=style["marker"],
            color=style["color"],
            markersize=MARKER_SIZE,
            capsize=2,
            linewidth=1,
            label=family,
        )
        if family.startswith("RSC"):
            sweep = group.assign(sigma=[_sigma(model, cards) for model in group["model"]]).dropna(subset=["sigma"])
            sweep = sweep[sweep["store"] != "yours"].sort_values("sigma")
            axes.plot(x[sweep.index], 100 * sweep["robust_accuracy"], color=style["color"], linewidth=1)
            labels += [(x[index], 100 * row["robust_accuracy"], f"σ={row['sigma']:g}", style["color"]) for index, row in sweep.iterrows()]
        labels += [
            (x[index], 100 * row["robust_accuracy"], _model_label(row), style["color"])
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
    ylabel = _stretch_cluster(axes, points["robust_high"])
    axes.autoscale_view()
    axes.set_xlim(axes.get_xlim())
    axes.set_ylim(min(axes.get_ylim()[0], -1), axes.get_ylim()[1])
    x_points, robust = x[points.index], 100 * points["robust_accuracy"]
    obstacles = _marker_boxes(axes, x_points, robust, MARKER_SIZE) + _bar_boxes(
        axes, x_points, 100 * points["robust_low"], 100 * points["robust_high"]
    )
    _place_labels(axes, labels, obstacles)
    return ylabel


@_styled
def plot_tradeoff(table: pd.DataFrame, cards: dict, out: Path, title: str) -> Path:
    """Clean (x) against robust (y) accuracy, one point per model, with the Pareto front and RSC sigma
    curves; when the rows carry energy, a second panel of robust accuracy against the estimated
    energy per image (log scale; the front now favours less energy)."""
    points = _attacked(table)
    costed = points.dropna(subset=["energy_pj"]) if "energy_pj" in points else points.iloc[:0]
    figure, (axes, *beside) = _figure(6.5, 4.8, panels=1 if costed.empty else 2)
    ylabel = _tradeoff_panel(axes, points, cards, 100 * points["clean_accuracy"], higher_is_better=True)
    for energy_axes in beside:
        energy_axes.set_xscale("log")
        # Labelled ticks at 1, 2 and 5 of each decade only: labels on every minor tick collide.
        energy_axes.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        energy_axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        energy_axes.xaxis.set_minor_formatter(NullFormatter())
        energy_axes.set_ylabel(_tradeoff_panel(energy_axes, costed, cards, costed["energy_pj"] / 1e6, higher_is_better=False))
        energy_axes.set_xlabel("estimated energy per image (µJ, log scale)")
        energy_axes.set_title("against energy: SynOps × 0.9 pJ + MACs × 4.6 pJ (an estimate)")
    return _finish(figure, axes, "clean accuracy (%)", title, out, legend_beside=beside[-1] if beside else None, ylabel=ylabel)


# More curves than this in one panel read as look-alike shades: `plot_eps` then draws a panel per family.
CURVES_PER_PANEL = 8


def _eps_curves(axes: Axes, curves: pd.DataFrame, protocols: list[str], colours: Callable[[str, list[str]], list]) -> None:
    """One line per model and protocol of ``curves`` on ``axes``, each model coloured by ``colours(family, names)``."""
    for family, members in _in_family_order(curves):
        style = _style(family)
        names = sorted(members["label"].unique())
        palette = colours(family, names)
        for (name, protocol), curve in members.groupby(["label", "protocol"]):
            position = names.index(name)
            eps, accuracy = curve_from_zero(curve)
            axes.plot(
                eps,
                [100 * value for value in accuracy],
                marker=style["marker"],
                markersize=5,
                color=palette[position],
                linestyle=LINE_STYLES[(position + protocols.index(protocol)) % len(LINE_STYLES)],
                linewidth=1.2,
                label=name if len(protocols) == 1 else f"{name} ({protocol})",
            )


@_styled
def plot_eps(table: pd.DataFrame, out: Path, title: str) -> Path:
    """Robust accuracy against eps, one line per model and protocol (A(0) is the clean accuracy).
    Up to `CURVES_PER_PANEL` curves share one panel, each family in shades of its colour; more are
    drawn as one panel per family (shared axes), its models in distinct colours, its legend beside it."""
    curves = _attacked(table)
    protocols = sorted(curves["protocol"].unique())
    curves = curves.assign(label=[_model_label(row) for _, row in curves.iterrows()])
    if curves.groupby(["label", "protocol"]).ngroups <= CURVES_PER_PANEL:
        figure, (axes,) = _figure(6.5, 4.8)
        _eps_curves(axes, curves, protocols, lambda family, names: _shades(_style(family)["color"], len(names)))
        return _finish(figure, axes, "eps", title, out)
    groups = _in_family_order(curves)
    columns = min(3, len(groups))
    rows = math.ceil(len(groups) / columns)
    figure = Figure(figsize=(5.2 * columns, 3.0 * rows))
    FigureCanvasAgg(figure)
    panels = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True).flatten()
    for axes, (family, members) in zip(panels, groups):
        _eps_curves(axes, members, protocols, lambda family, names: [PALETTE[(index + 2) % len(PALETTE)] for index in range(len(names))])
        axes.set_title(family, fontsize=9)
        axes.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    for axes in panels[len(groups) :]:
        axes.set_visible(False)
    for axes in panels[::columns]:
        axes.set_ylabel("robust accuracy (%)")
    for axes in panels[: len(groups)][-columns:]:
        axes.set_xlabel("eps")
        axes.xaxis.set_tick_params(labelbottom=True)
    figure.suptitle(title)
    figure.set_layout_engine("constrained")
    return _save(figure, out)


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
