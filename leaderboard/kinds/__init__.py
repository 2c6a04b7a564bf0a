"""How each task kind's results look on the site, discovered from the modules of this package.

A module defines a ``KindPage`` subclass decorated with ``@register`` under the kind's name: the
result page's fragment (a template in ``templates/leaderboard/kinds/``) and the charts drawn
from a graded submission's metrics, served at ``/submissions/<id>/<chart>.svg``. Numbers, pass
rule and headline figures come from the kind itself (``grader.kinds``); pictures drawn on public
samples come from the worker and are served at ``/submissions/<id>/<picture>.png``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from eval_data.registry import Registry

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

#: a graded submission's metrics → an SVG, or None when the metrics hold nothing to draw
Draw = Callable[[dict[str, Any]], bytes | None]


@dataclass(frozen=True)
class ChartTable:
    """The numbers a chart draws, as a table: the chart's text alternative on the result page,
    for whoever cannot see the picture or read its small print on a phone."""

    #: the column headers; the first names the rows
    headers: tuple[str, ...]
    #: a label, then one number for each further column (None: not measured)
    rows: list[tuple[str, list[float | None]]]
    #: the numbers' unit ("%", or "" for counts) and decimals
    unit: str = ""
    decimals: int = 0


#: a graded submission's metrics → the chart's numbers, or None when there are none
Tabulate = Callable[[dict[str, Any]], ChartTable | None]


@dataclass(frozen=True)
class Chart:
    draw: Draw
    #: the metrics it is drawn from: a result without them shows no such chart
    needs: tuple[str, ...]
    #: the image's alternative text and caption on the result page (lazily translated)
    alt: StrOrPromise
    caption: StrOrPromise
    #: the same numbers as a table, shown under the chart
    table: Tabulate | None = None


@dataclass(frozen=True)
class ShownChart:
    """A chart as a result page shows it: its name in the URL, what it is, its numbers."""

    name: str
    chart: Chart
    table: ChartTable | None


@dataclass(frozen=True)
class Picture:
    """A picture the worker draws after grading (``TaskKind.draw_samples``), by its name."""

    alt: StrOrPromise
    caption: StrOrPromise


class KindPage:
    name: str
    #: the result page's fragment for a graded submission
    result_template: str = "leaderboard/kinds/default.html"
    charts: ClassVar[dict[str, Chart]] = {}
    pictures: ClassVar[dict[str, Picture]] = {}

    def charts_for(self, metrics: dict[str, Any]) -> dict[str, Chart]:
        """The charts this result can show: those whose metrics are there."""
        return {
            name: chart
            for name, chart in self.charts.items()
            if all(metrics.get(key) for key in chart.needs)
        }

    def shown_charts(self, metrics: dict[str, Any]) -> list[ShownChart]:
        """The charts this result shows, each with its table of numbers (if the kind has one)."""
        return [
            ShownChart(name, chart, chart.table(metrics) if chart.table else None)
            for name, chart in self.charts_for(metrics).items()
        ]


_registry: Registry[KindPage] = Registry(__name__, "task kind page", LookupError)
register = _registry.register
get_page = _registry.get
page_names = _registry.names
