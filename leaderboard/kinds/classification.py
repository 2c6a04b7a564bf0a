"""Image classification on the site: per-class accuracy, and the confusion matrix."""

from __future__ import annotations

from typing import Any, ClassVar

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from leaderboard import charts
from leaderboard.kinds import Chart, ChartTable, KindPage, register


def class_names(metrics: dict[str, Any]) -> list[str]:
    """The classes in index order: indices follow the sorted class folder names, and sorting
    recovers them whatever order the stored JSON keeps its keys in."""
    per_class = metrics.get("per_class_accuracy")
    return sorted(per_class) if isinstance(per_class, dict) else []


def per_class(metrics: dict[str, Any]) -> bytes | None:
    names = class_names(metrics)
    if not names:
        return None
    accuracy = [metrics["per_class_accuracy"][name] for name in names]
    svg, _drawn = charts.per_class_bars(names, accuracy)
    return svg


def per_class_table(metrics: dict[str, Any]) -> ChartTable | None:
    """The bars' numbers, in percent; a class without test images (None) left out, as drawn."""
    names = class_names(metrics)
    if not names:
        return None
    accuracy = metrics["per_class_accuracy"]
    return ChartTable(
        headers=(_("Class"), _("Accuracy")),
        rows=[(name, [accuracy[name] * 100]) for name in names if accuracy[name] is not None],
        unit="%",
        decimals=1,
    )


def confusion(metrics: dict[str, Any]) -> bytes | None:
    names, counts = class_names(metrics), metrics.get("confusion")
    if not names or not isinstance(counts, list):
        return None
    return charts.confusion_matrix(names, counts)


def confusion_table(metrics: dict[str, Any]) -> ChartTable | None:
    """The matrix's counts: a row per true class, a column per predicted class."""
    names, counts = class_names(metrics), metrics.get("confusion")
    if not names or not isinstance(counts, list) or len(counts) != len(names):
        return None
    return ChartTable(
        headers=(_("True class / predicted"), *names),
        rows=[
            (name, [float(count) for count in row]) for name, row in zip(names, counts, strict=True)
        ],
    )


@register
class ClassificationPage(KindPage):
    name = "classification"
    charts: ClassVar[dict[str, Chart]] = {
        "per-class": Chart(
            per_class,
            needs=("per_class_accuracy",),
            alt=gettext_lazy("Bar chart of accuracy per class on the hidden test set"),
            caption=gettext_lazy(
                "Accuracy per class on the hidden test set; a class without test images is"
                " left out."
            ),
            table=per_class_table,
        ),
        "confusion": Chart(
            confusion,
            needs=("per_class_accuracy", "confusion"),
            alt=gettext_lazy(
                "Confusion matrix: true classes in rows, predicted classes in columns"
            ),
            caption=gettext_lazy(
                "Which class your model predicted for the images of each class; the"
                " diagonal is what it got right."
            ),
            table=confusion_table,
        ),
    }
