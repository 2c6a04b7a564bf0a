"""How scores, figures and times read on pages and in emails: one place, so they agree."""

from __future__ import annotations

import math
from datetime import datetime, tzinfo
from typing import Any


def stored_number(value: Any) -> float | None:
    """A figure read from stored metrics: JSON gives numbers, "Infinity", or nothing at all."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def format_score(score: Any, display: str) -> str:
    """``display`` is the kind's ``score_display``: "number" or "percent"."""
    score = stored_number(score)
    if score is None or math.isnan(score):
        return "—"
    if math.isinf(score):
        return "∞" if score > 0 else "−∞"
    if display == "percent":
        return f"{score * 100:.2f} %"
    return f"{score:.2f}"


def format_fine(value: Any) -> str:
    """A small figure (an error) to six decimals."""
    value = stored_number(value)
    if value is None or math.isnan(value):
        return "—"
    # Students compare against their own evaluation to 1e-6.
    return f"{value:.6f}"


#: how a kind's figure reads (``grader.kinds.Figure.style``)
STYLES = {
    "number": lambda value: format_score(value, "number"),
    "percent": lambda value: format_score(value, "percent"),
    "fine": format_fine,
}


def format_figure(value: Any, style: str) -> str:
    """A figure in its kind's style: "number" (two decimals), "percent", "fine" (six decimals)."""
    return STYLES[style](value)


def format_local(moment: datetime, zone: tzinfo) -> str:
    """A wall-clock time in ``zone`` with its abbreviation: "Wed 04 Feb 2026, 23:59:59 CET"."""
    local = moment.astimezone(zone)
    return f"{local:%a %d %b %Y, %H:%M:%S} {local.tzname()}"
