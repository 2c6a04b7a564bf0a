"""Charts drawn with matplotlib: pure functions from numbers to SVG bytes.

matplotlib is imported on first use, never when the URLs load: most requests draw nothing, and
the web process should not pay for it at start-up. Figures are built with the object-oriented
API on the Agg backend (no pyplot, so no global figure state shared between threads). Text stays
text in the SVG (``svg.fonttype: none``): smaller files, and the labels are searchable.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext, ngettext

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BINS = 20
PASS_COLOUR = "#b03a2e"
BAR_COLOUR = "#4c72b0"
IOU_COLOUR = "#dd8452"
BASELINE_COLOUR = "#2e7d32"

_RC = {
    "svg.fonttype": "none",
    # Stable ids and no creation date: the same data gives the same bytes.
    "svg.hashsalt": "leaderboard",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@cache
def _matplotlib() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    return matplotlib


def _figure(width: float, height: float) -> Figure:
    _matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def _message(text: str) -> bytes:
    """A small figure holding only ``text``: the empty state of a chart."""
    fig = _figure(6.4, 1.2)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center")
    return _svg(fig)


@dataclass(frozen=True)
class Histogram:
    svg: bytes
    #: students per bin, lowest bin first (the infinite scores are in the last one)
    counts: list[int] = field(default_factory=list)
    #: bin edges, in the units drawn (percent for segmentation)
    edges: list[float] = field(default_factory=list)
    #: students whose best score is +inf (a perfect keypoint model), drawn in the top bin
    infinite: int = 0


def best_score_histogram(
    scores: Sequence[float],
    threshold: float,
    *,
    percent: bool,
    label: str = "best score",
    infinite_means: str = "",
    baseline: float | None = None,
) -> Histogram:
    """A histogram of best scores (one per student) with the pass threshold as a vertical line
    (and the course's baseline, when given, as another).

    NaN scores are left out; +inf is clipped into the top bin and counted in the title (with
    what it means for the kind, ``infinite_means``), -inf into the bottom bin. No scores at
    all draws a small "no graded submissions yet" figure.
    """
    import numpy as np

    scale = 100.0 if percent else 1.0
    values = [s for s in scores if not math.isnan(s)]
    infinite = sum(1 for s in values if s == math.inf)
    finite = np.array([s * scale for s in values if math.isfinite(s)], dtype=np.float64)
    if not values:
        return binned_histogram([], [], 0, 0, threshold, percent=percent)
    lines = [threshold * scale] + ([] if baseline is None else [baseline * scale])
    low, high = min([*lines, *finite]), max([*lines, *finite])
    if high - low < 1e-9:
        low, high = low - 1.0, high + 1.0
    counts, edges = np.histogram(finite, bins=BINS, range=(low, high))
    counts[-1] += infinite
    counts[0] += sum(1 for s in values if s == -math.inf)
    return binned_histogram(
        [int(c) for c in counts],
        [float(e) for e in edges],
        infinite,
        len(values),
        threshold,
        percent=percent,
        label=label,
        infinite_means=infinite_means,
        baseline=baseline,
    )


def binned_histogram(
    counts: Sequence[int],
    edges: Sequence[float],
    infinite: int,
    students: int,
    threshold: float,
    *,
    percent: bool,
    label: str = "best score",
    infinite_means: str = "",
    baseline: float | None = None,
) -> Histogram:
    """The histogram of scores already counted per bin (``edges`` in drawn units: percent
    where ``percent``), with the pass threshold and, when given, the baseline as lines."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    scale = 100.0 if percent else 1.0
    with _matplotlib().rc_context(_RC):
        if not students:
            return Histogram(svg=_message(gettext("no graded submissions yet")))
        bars = np.asarray(counts, dtype=np.int64)
        bounds = np.asarray(edges, dtype=np.float64)
        fig = _figure(6.4, 3.0)
        ax = fig.add_subplot()
        ax.bar(
            bounds[:-1],
            bars,
            width=np.diff(bounds),
            align="edge",
            color=BAR_COLOUR,
            edgecolor="white",
            linewidth=0.5,
        )
        top = max(int(bars.max()), 1)
        line = threshold * scale
        ax.axvline(line, color=PASS_COLOUR, linewidth=1.5, linestyle="--")
        ax.text(line, top * 1.04, " " + gettext("pass"), color=PASS_COLOUR, ha="left", va="bottom")
        if baseline is not None and math.isfinite(baseline):
            mark = baseline * scale
            ax.axvline(mark, color=BASELINE_COLOUR, linewidth=1.5, linestyle=":")
            ax.text(
                mark,
                top * 1.10,
                " " + gettext("course baseline"),
                color=BASELINE_COLOUR,
                ha="left",
                va="bottom",
            )
        ax.set_ylim(0, top * 1.2)
        ax.set_xlabel(f"{label} (%)" if percent else label)
        ax.set_ylabel(gettext("students"))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        title = ngettext("%(count)s student", "%(count)s students", students) % {"count": students}
        if infinite:
            means = f" ({infinite_means})" if infinite_means else ""
            title += " · " + ngettext(
                "%(count)s with an infinite score%(means)s, in the top bin",
                "%(count)s with an infinite score%(means)s, in the top bin",
                infinite,
            ) % {"count": infinite, "means": means}
        ax.set_title(title, loc="left")
        return Histogram(
            svg=_svg(fig), counts=[int(c) for c in bars], edges=list(edges), infinite=infinite
        )


def per_class_bars(
    names: Sequence[str],
    accuracy: Sequence[float | None],
    iou: Sequence[float | None] | None = None,
) -> tuple[bytes, list[str]]:
    """Grouped bars of per-class accuracy (and IoU, if given) in percent; classes absent from
    the test set (``None``) are left out. Returns the SVG and the class names drawn."""
    import numpy as np

    ious: Sequence[float | None] = iou if iou is not None else [0.0] * len(names)
    drawn = [
        (name, acc, jac)
        for name, acc, jac in zip(names, accuracy, ious, strict=True)
        if acc is not None and jac is not None
    ]
    with _matplotlib().rc_context(_RC):
        if not drawn:
            return _message("no labelled classes"), []
        x = np.arange(len(drawn))
        width = 0.4 if iou is not None else 0.7
        fig = _figure(max(4.0, 0.45 * len(drawn) + 1.5), 3.2)
        ax = fig.add_subplot()
        offset = width / 2 if iou is not None else 0.0
        ax.bar(x - offset, [a * 100 for _, a, _ in drawn], width, label=gettext("accuracy"))
        if iou is not None:
            ax.bar(x + offset, [j * 100 for _, _, j in drawn], width, label="IoU", color=IOU_COLOUR)
        ax.set_xticks(x, [name for name, _, _ in drawn], rotation=45, ha="right")
        ax.set_ylim(0, 100)
        ax.set_ylabel("%")
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, ncols=2)
        ax.set_title(gettext("Per class, on the hidden test set"), loc="left")
        return _svg(fig), [name for name, _, _ in drawn]


def confusion_matrix(names: Sequence[str], counts: Sequence[Sequence[int]]) -> bytes:
    """A heat map of how often each true class (rows) was predicted as each class (columns),
    each row as a share of its images so that small classes read as clearly as large ones; the
    cells hold the counts."""
    import numpy as np

    matrix = np.asarray(counts, dtype=np.float64)
    with _matplotlib().rc_context(_RC):
        if matrix.size == 0 or matrix.shape != (len(names), len(names)):
            return _message("no confusion matrix")
        totals = matrix.sum(axis=1, keepdims=True)
        shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
        side = max(3.5, 0.42 * len(names) + 1.8)
        fig = _figure(side + 0.8, side)
        ax = fig.add_subplot()
        image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        ticks = np.arange(len(names))
        ax.set_xticks(ticks, names, rotation=45, ha="right")
        ax.set_yticks(ticks, names)
        ax.set_xlabel(gettext("predicted class"))
        ax.set_ylabel(gettext("true class"))
        if len(names) <= 20:
            for (row, col), count in np.ndenumerate(matrix):
                if count:
                    dark = shares[row, col] > 0.6
                    ax.text(
                        col,
                        row,
                        f"{int(count)}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if dark else "black",
                    )
        fig.colorbar(image, ax=ax, label=gettext("share of the true class's images"))
        ax.set_title(gettext("Confusion matrix on the hidden test set"), loc="left")
        return _svg(fig)


def compute_per_hour(
    hours: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    label: str,
    empty: str,
) -> bytes:
    """Stacked bars: grading seconds per hour (``hours``: their labels, oldest first), one
    colour per challenge (``series``: name and seconds per hour); ``empty`` when none."""
    if not any(sum(values) for _name, values in series):
        return _message(empty)
    fig = _figure(7.2, 2.8)
    ax = fig.add_subplot()
    xs = range(len(hours))
    bottom = [0.0] * len(hours)
    for name, values in series:
        ax.bar(xs, values, bottom=bottom, label=name, width=0.8)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xticks(list(xs)[::3], [hours[i] for i in range(0, len(hours), 3)])
    ax.set_ylabel(label)
    if len(series) > 1:
        ax.legend(loc="upper left", fontsize=7, frameon=False)
    return _svg(fig)
