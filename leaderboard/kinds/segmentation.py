"""Segmentation on the site: per-class accuracy and IoU, and the model's masks on public images."""

from __future__ import annotations

from typing import Any, ClassVar

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from leaderboard import charts
from leaderboard.kinds import Chart, ChartTable, KindPage, Picture, register


def class_names() -> list[str]:
    from eval_data.kinds.segmentation import LABEL_COLOURS

    return [name for class_id, name, _ in LABEL_COLOURS if class_id >= 0]


def per_class(metrics: dict[str, Any]) -> bytes | None:
    accuracy, iou = metrics.get("per_class_accuracy"), metrics.get("per_class_iou")
    names = class_names()
    if not (isinstance(accuracy, list) and isinstance(iou, list)):
        return None
    if not len(accuracy) == len(iou) == len(names):
        return None
    svg, _drawn = charts.per_class_bars(names, accuracy, iou)
    return svg


def per_class_table(metrics: dict[str, Any]) -> ChartTable | None:
    """The bars' numbers, in percent; classes absent from the test set left out, as drawn."""
    accuracy, iou = metrics.get("per_class_accuracy"), metrics.get("per_class_iou")
    names = class_names()
    if not (isinstance(accuracy, list) and isinstance(iou, list)):
        return None
    if not len(accuracy) == len(iou) == len(names):
        return None
    return ChartTable(
        headers=(_("Class"), _("Accuracy"), _("IoU")),
        rows=[
            (name, [acc * 100, jac * 100])
            for name, acc, jac in zip(names, accuracy, iou, strict=True)
            if acc is not None and jac is not None
        ],
        unit="%",
        decimals=1,
    )


@register
class SegmentationPage(KindPage):
    name = "segmentation"
    charts: ClassVar[dict[str, Chart]] = {
        "per-class": Chart(
            per_class,
            needs=("per_class_accuracy", "per_class_iou"),
            alt=gettext_lazy("Bar chart of accuracy and IoU per class on the hidden test set"),
            caption=gettext_lazy(
                "Accuracy and IoU per class on the hidden test set; classes the test set"
                " does not contain are left out."
            ),
            table=per_class_table,
        )
    }
    pictures: ClassVar[dict[str, Picture]] = {
        "samples": Picture(
            alt=gettext_lazy(
                "Public sample images beside the same images with this model's predicted"
                " classes overlaid"
            ),
            caption=gettext_lazy(
                "Left: public sample images, not from the hidden test set. Right: your"
                " model's predicted classes, in the MSRC label colours."
            ),
        )
    }
