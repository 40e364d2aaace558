"""Pictures of a path result (the plain dict :func:`regcore_apps.path.run` returns, or its JSON).

* :func:`loss_figure` — validation and training loss (mean over folds, ±1 standard error) against
  the coefficient, with the ``min`` and ``1se`` choices marked: how the choice was made.
* :func:`coefficient_figure` — a linear model's coefficients against the coefficient, with the
  number of nonzero coefficients on the top axis (glmnet's picture): what the choice keeps.
* :func:`save` — both, as files.

Design requirements: matplotlib is optional (``pip install 'regcore[plot]'``) and imported only
inside these functions, so ``import regcore_apps.path`` never imports it; figures are built as
``matplotlib.figure.Figure`` objects with an Agg canvas, never through pyplot's global state, so
they are safe in tests, threads and headless servers. Colors are the Okabe–Ito palette, which
stays distinguishable under the common color-vision deficiencies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: importing this module must not import matplotlib
    from matplotlib.figure import Figure

LOSS_NAMES = {"mse": "mean squared error", "half_mse": "½·mean squared error",
              "softmax_xent": "cross-entropy"}
LOSS_SIZE = (9.0, 5.0)  # inches; at DPI, 1350 × 750 pixels
COEFFICIENT_SIZE = (9.0, 5.4)
DPI = 150
MAX_LABELLED = 10  # coefficient paths named in the legend; the rest are drawn grey
# Okabe & Ito (2008), "Color Universal Design"
BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, YELLOW, BLACK = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
PALETTE = (BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, BLACK)  # yellow is faint on white
VALIDATION, TRAIN, MIN_MARK, ONE_SE_MARK = BLUE, ORANGE, VERMILLION, GREEN
_STYLE = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9,
          "xtick.labelsize": 9, "ytick.labelsize": 9, "axes.spines.top": False,
          "axes.spines.right": False}


def _matplotlib() -> Any:
    """The matplotlib module; :class:`ImportError` naming the extra when it is missing. Every
    public function calls this first, so a missing install is reported before anything else."""
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("regcore_apps.path.plot needs matplotlib: pip install 'regcore[plot]' "
                          "(or pip install matplotlib)") from e
    return matplotlib


def _figure(size: tuple[float, float]) -> Figure:
    """An empty Figure on an Agg canvas (constrained layout: nothing overlaps, and the pixel
    size stays ``size × DPI``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style() -> Any:
    """Context in which to build a figure: :data:`_STYLE` over matplotlib's defaults."""
    return _matplotlib().rc_context(_STYLE)


def _finite(values: Iterable[Any]) -> list[float]:
    """Floats, with JSON's ``null`` (a diverged fit) as NaN so lines break there."""
    return [math.nan if v is None else float(v) for v in values]


def _grid_axes(ax: Any, result: dict[str, Any]) -> None:
    """Log x over the grid, subtle grid lines, the axis label."""
    ax.set_xscale("log")
    ax.set_xlabel(result["axis"]["label"])
    ax.grid(True, which="major", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)


def _log_y(ax: Any) -> None:
    """Log y with ticks at 1, 2 and 5 times powers of 10, written plainly (0.02, not 2×10⁻²):
    a loss curve spans one or two decades, where powers of 10 alone leave two ticks."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _fmt(v)))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _title(fig: Any, result: dict[str, Any], what: str, note: str = "") -> None:
    """``{problem} — {what}`` over ``k-fold, backend, dtype, optimizer`` (and ``note``)."""
    k = result["folds"]["k"]
    details = (f"{k}-fold cross-validation · backend {result['backend']} · {result['dtype']} · "
               f"optimizer {result['optimizer']}")
    fig.suptitle(f"{result['problem']} — {what}\n{details}{note}", fontsize=11)


def _or_low(value: float) -> float:
    """``value``, or -inf for NaN: sorts a diverged fit last instead of scrambling the order."""
    return value if math.isfinite(value) else -math.inf


def _fmt(value: float) -> str:
    """Three significant digits, short exponents: ``0.0178``, ``4.22e-6``."""
    return f"{value:.3g}".replace("e-0", "e-").replace("e+0", "e+")


def loss_figure(result: dict[str, Any], folds: bool = True) -> Figure:
    """Mean validation and training loss over folds against the coefficient, each with a ±1
    standard-error band; ``min`` marked by a circle and a dotted line, ``1se`` by a diamond and
    a dashed line, with the ``1se`` threshold (``mean_min + se_min``) as a faint horizontal line.
    ``folds``: each fold's validation curve as a thin faint line too. The y axis is logarithmic
    when the losses are positive and span more than a factor of 10."""
    _matplotlib()
    grid = _finite(result["grid"])
    curves = {name: _finite(result[name]) for name in ("mean_val", "se_val", "mean_train",
                                                        "se_train")}
    with _style():
        fig = _figure(LOSS_SIZE)
        ax = fig.add_subplot()
        _grid_axes(ax, result)
        legend = []  # (handle, label), in the order the legend lists them
        for kind, color, name in (("val", VALIDATION, "validation"),
                                  ("train", TRAIN, "training")):
            mean, se = curves[f"mean_{kind}"], curves[f"se_{kind}"]
            low = [m - s for m, s in zip(mean, se, strict=True)]
            high = [m + s for m, s in zip(mean, se, strict=True)]
            band = ax.fill_between(grid, low, high, color=color, alpha=0.22, linewidth=0,
                                   zorder=2)
            (line,) = ax.plot(grid, mean, color=color, linewidth=2, marker="o", markersize=3,
                              zorder=3, gid=f"mean_{kind}")
            legend.append(((band, line), f"{name}: mean ±1 SE"))
        if folds and result["val_loss"]:
            for row in result["val_loss"]:
                (fold,) = ax.plot(grid, _finite(row), color=VALIDATION, alpha=0.3,
                                  linewidth=0.7, zorder=1)
            legend.insert(1, (fold, "validation: each fold"))
        legend += _mark_choices(ax, result, curves["mean_val"], curves["se_val"])
        values = [v for v in curves["mean_val"] + curves["mean_train"] if math.isfinite(v)]
        if values and min(values) > 0 and max(values) / min(values) > 10:
            _log_y(ax)
        ax.set_ylabel(LOSS_NAMES.get(result["model"]["loss"], result["model"]["loss"]))
        ax.legend(*zip(*legend, strict=True), loc="center left", bbox_to_anchor=(1.01, 0.5),
                  framealpha=0.9)
        _title(fig, result, "loss along the regularization path")
    return fig


def _mark_choices(ax: Any, result: dict[str, Any], mean: Sequence[float],
                  se: Sequence[float]) -> list[tuple[Any, str]]:
    """The ``min`` and ``1se`` choices on the mean validation curve, and the ``1se`` threshold;
    their legend entries. The points' artists carry gids ``choice_min`` and ``choice_1se``."""
    legend = []
    best = result["choice"]["min"]["index"]
    threshold = ax.axhline(mean[best] + se[best], color=ONE_SE_MARK, linewidth=0.9, alpha=0.7,
                           linestyle=(0, (1, 2)), zorder=2)
    marks = {"min": (MIN_MARK, "o", ":", "min"), "1se": (ONE_SE_MARK, "D", "--", "1 SE")}
    for rule, (color, marker, style, name) in marks.items():
        if rule not in result["choice"]:
            continue
        i, value = result["choice"][rule]["index"], result["choice"][rule]["value"]
        vline = ax.axvline(value, color=color, linestyle=style, linewidth=1.3, zorder=2)
        (point,) = ax.plot([value], [mean[i]], marker=marker, markersize=9, color=color,
                           markeredgecolor="white", markeredgewidth=1.2, linestyle="none",
                           zorder=5, gid=f"choice_{rule}")
        legend.append(((vline, point), f"{name}: {_fmt(value)}"))
    legend.append((threshold, "min mean + 1 SE"))
    return legend


def coefficient_figure(result: dict[str, Any]) -> Figure:
    """A linear model's coefficients against the coefficient (full-data fits), a line at 0,
    the ``min`` and ``1se`` choices as vertical lines, and the number of nonzero coefficients
    on the top axis. Up to :data:`MAX_LABELLED` paths are named in the legend (the largest at
    the least regularized end); any others are grey. :class:`ValueError` when the result has
    no ``coefficients`` (a network: its weights have no one-line path)."""
    _matplotlib()
    if "coefficients" not in result:
        raise ValueError(f"coefficient_figure: the {result.get('problem', '?')!r} result has no "
                         "'coefficients' (only linear models record a coefficient path); "
                         "use loss_figure")
    coefs = result["coefficients"]
    grid = _finite(result["grid"])
    path = [_finite(row) for row in coefs["path"]]
    columns = [[row[c] for row in path] for c in range(len(coefs["names"]))]
    last = grid.index(min(grid))
    order = sorted(range(len(columns)), key=lambda c: -_or_low(abs(columns[c][last])))
    labelled = set(order[:MAX_LABELLED])
    note = ""
    if result.get("proximal"):
        note = "\nzeros are exact (proximal step)"
    elif result.get("optimizer") == "adam":
        note = "\nAdam has no proximal step: coefficients near 0 are not exactly 0"
    with _style():
        fig = _figure(COEFFICIENT_SIZE)
        ax = fig.add_subplot()
        _grid_axes(ax, result)
        ax.axhline(0, color="#555555", linewidth=0.9, zorder=1)
        lines = {}
        for rank, c in enumerate(order):
            named = c in labelled
            (lines[c],) = ax.plot(grid, columns[c], linewidth=1.8 if named else 0.8,
                                  zorder=3 if named else 2,
                                  color=PALETTE[rank % len(PALETTE)] if named else "#b0b0b0",
                                  linestyle="-" if rank < len(PALETTE) else "--",
                                  label=coefs["names"][c], gid=f"coef_{c}")
        # the legend lists the named paths top to bottom as they end, least regularized
        legend = [(lines[c], coefs["names"][c])
                  for c in sorted(labelled, key=lambda c: -_or_low(columns[c][last]))]
        # choices in grey: the palette's colors are the coefficients'
        marks = {"min": ("#333333", ":", "min"), "1se": ("#333333", "--", "1 SE")}
        for rule, (color, style, name) in marks.items():
            if rule in result["choice"]:
                value = result["choice"][rule]["value"]
                vline = ax.axvline(value, color=color, linestyle=style, linewidth=1.3, zorder=2)
                legend.append((vline, f"{name}: {_fmt(value)}"))
        _nonzero_axis(ax, grid, len(coefs["names"]), coefs["zeros"])
        ax.set_ylabel("coefficient (fit on all data)")
        if len(columns) > len(labelled):
            legend.append((lines[order[-1]], f"{len(columns) - len(labelled)} more"))
        ax.legend(*zip(*legend, strict=True), loc="center left", bbox_to_anchor=(1.01, 0.5),
                  framealpha=0.9)
        _title(fig, result, "coefficient path", note)
    return fig


def _nonzero_axis(ax: Any, grid: Sequence[float], n: int, zeros: Sequence[int]) -> None:
    """The top axis: how many coefficients are nonzero at (at most 25 of) the grid values."""
    from matplotlib.ticker import NullLocator

    top = ax.secondary_xaxis("top")
    step = max(1, math.ceil(len(grid) / 25))
    ticks = list(range(0, len(grid), step))
    top.set_xticks([grid[j] for j in ticks], labels=[str(n - zeros[j]) for j in ticks])
    top.xaxis.set_minor_locator(NullLocator())
    top.tick_params(labelsize=8, length=3)
    top.set_xlabel("nonzero coefficients", fontsize=9)


def save(result: dict[str, Any], out_dir: str | Path, formats: Sequence[str] = ("png", "svg"),
         prefix: str = "") -> list[Path]:
    """Write ``{prefix}loss.{fmt}`` and, for a linear model, ``{prefix}coefficients.{fmt}``
    into ``out_dir`` (created); PNGs at :data:`DPI`. Returns the paths written."""
    figures = {"loss": loss_figure(result)}
    if "coefficients" in result:
        figures["coefficients"] = coefficient_figure(result)
    supported = figures["loss"].canvas.get_supported_filetypes()
    unknown = [f for f in formats if f not in supported]
    if unknown:
        raise ValueError(f"save: unknown format(s) {', '.join(unknown)}; matplotlib writes "
                         f"{', '.join(sorted(supported))}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in figures.items():
        for fmt in formats:
            path = out / f"{prefix}{name}.{fmt}"
            fig.savefig(path, format=fmt, dpi=DPI)
            written.append(path)
    return written
