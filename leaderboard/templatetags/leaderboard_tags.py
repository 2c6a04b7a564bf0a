"""Template helpers for scores and times (the same formatting as emails and the API)."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from courses.formatting import format_count, format_figure, format_local, format_score
from courses.models import Challenge, Course
from grader.kinds import Figure
from submissions.models import Submission
from submissions.policies import Shown, shown_result
from submissions.wording import student_message

register = template.Library()


@register.filter
def score(value: object, challenge: Challenge) -> str:
    return format_score(value, challenge.kind.score_display)


@register.filter
def figure(figures: object, which: Figure) -> str:
    """One of a result's figures (a dict of metrics) as the kind says it reads."""
    value = figures.get(which.key) if isinstance(figures, dict) else None
    return format_figure(value, which.style)


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
def shown(submission: Submission) -> Shown:
    """A result as its student may see it now: the public part only before the reveal."""
    return shown_result(submission)


@register.filter
def thousands(value: int | float | None) -> str:
    """5000000 -> "5,000,000" ("5.000.000" in German)."""
    if value is None:
        return "—"
    return format_count(value)


@register.filter
def translate_text(text: str) -> str:
    """A string marked elsewhere (the grader's kind titles and labels), translated here."""
    return gettext(text) if text else text


@register.filter(name="student_message")
def student_message_filter(text: str) -> str:
    """A message the grader stored in English, in the reader's language."""
    return student_message(text)


@register.filter
def lookup(mapping: object, key: object) -> object:
    """``mapping[key]``, or None: a per-row figure kept beside the rows (the grade book's
    grading seconds by username)."""
    if isinstance(mapping, dict):
        return mapping.get(key)
    return None
