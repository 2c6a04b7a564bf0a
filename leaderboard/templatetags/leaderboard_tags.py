"""Template helpers for scores and times (the same formatting as emails and the API)."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from leaderboard.formatting import format_local, format_mse, format_score
from leaderboard.models import Challenge, Course

register = template.Library()


@register.filter
def score(value: object, challenge: Challenge) -> str:
    return format_score(value, challenge.kind.score_display)


@register.filter
def mse(value: object) -> str:
    return format_mse(value)


@register.simple_tag
def local_time(moment: datetime | None, course: Course) -> SafeString | str:
    """The time in the course's timezone; ``localtime.js`` adds the reader's own if it differs."""
    if moment is None:
        return "—"
    return format_html(
        '<time datetime="{}" data-localize>{}</time>',
        # In the course's offset, so the script can tell whether the reader's differs.
        moment.astimezone(course.tzinfo).isoformat(),
        format_local(moment, course.tzinfo),
    )


@register.filter
def thousands(value: int | float | None) -> str:
    """5000000 -> "5,000,000" (independent of locale settings)."""
    if value is None:
        return "—"
    return f"{int(value):,}"
