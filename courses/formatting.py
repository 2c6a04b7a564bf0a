"""How scores, figures and times read on pages and in emails: one place, so they agree.

In the active language's conventions (``config/formats/``): "12.35" and "Wed 04 Feb 2026,
23:59:59 CET" in English, "12,35" and "Mi, 04.02.2026, 23:59:59 CET" in German. A worker writing
an email activates its recipient's language first (``translation.override``).
"""

from __future__ import annotations

import math
from datetime import datetime, tzinfo
from typing import Any

from django.utils.formats import date_format, number_format


def stored_number(value: Any) -> float | None:
    """A figure read from stored metrics: JSON gives numbers, "Infinity", or nothing at all."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def localised(digits: str) -> str:
    """A number already rounded by Python's formatting, with the language's decimal separator.

    ``number_format`` given a float cuts its digits off instead of rounding (12.346 would read
    12.34); given the rounded text it only swaps the separators.
    """
    return number_format(digits)


def format_score(score: Any, display: str) -> str:
    """``display`` is the kind's ``score_display``: "number" or "percent"."""
    score = stored_number(score)
    if score is None or math.isnan(score):
        return "—"
    if math.isinf(score):
        return "∞" if score > 0 else "−∞"
    if display == "percent":
        return f"{localised(f'{score * 100:.2f}')} %"
    return localised(f"{score:.2f}")


def format_fine(value: Any) -> str:
    """A small figure (an error) to six decimals."""
    value = stored_number(value)
    if value is None or math.isnan(value):
        return "—"
    # Students compare against their own evaluation to 1e-6.
    return localised(f"{value:.6f}")


#: how a kind's figure reads (``grader.kinds.Figure.style``)
STYLES = {
    "number": lambda value: format_score(value, "number"),
    "percent": lambda value: format_score(value, "percent"),
    "fine": format_fine,
}


def format_figure(value: Any, style: str) -> str:
    """A figure in its kind's style: "number" (two decimals), "percent", "fine" (six decimals)."""
    return STYLES[style](value)


def format_count(value: int | float) -> str:
    """A whole number grouped in thousands: "5,000,000" in English, "5.000.000" in German."""
    return number_format(int(value), 0, force_grouping=True)


def format_local(moment: datetime, zone: tzinfo) -> str:
    """A wall-clock time in ``zone`` with its abbreviation: "Wed 04 Feb 2026, 23:59:59 CET"."""
    local = moment.astimezone(zone)
    return f"{date_format(local, 'DATETIME_FORMAT')} {local.tzname()}"
