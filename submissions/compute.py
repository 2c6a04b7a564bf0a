"""Compute, visible: the grading seconds each upload, student and challenge cost, so a course
sees its deadline load and can plan its workers.

A grading's seconds are its run's, from the claim to the recorded outcome (``GradingRun``
``started_at`` to ``finished_at``), every attempt counted (a lost attempt took a worker's time
too; a re-grade attempt as well). Staff see them exactly; a student sees their own grading's
duration only coarsely (``submissions.queue.coarse_seconds``, docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import DurationField, ExpressionWrapper, F, OuterRef, QuerySet, Subquery, Sum
from django.utils import timezone

from courses.models import Challenge
from submissions.models import GradingRun, Submission

HOUR = timedelta(hours=1)
#: the health page's chart and table
HOURS_SHOWN = 24


def run_duration() -> ExpressionWrapper:
    return ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())


def with_grading_seconds(submissions: QuerySet[Submission]) -> QuerySet[Submission]:
    """``submissions`` annotated with ``grading_time``: the total of their finished runs (a
    subquery per row, so no grouping of the outer query)."""
    total = (
        GradingRun.objects.filter(submission=OuterRef("pk"), finished_at__isnull=False)
        .order_by()
        .values("submission")
        .annotate(total=Sum(run_duration()))
        .values("total")
    )
    return submissions.annotate(grading_time=Subquery(total, output_field=DurationField()))


def grading_seconds_by_username(challenge: Challenge) -> dict[str, float]:
    """Total grading seconds of each student's uploads to ``challenge`` (username → seconds)."""
    rows = (
        GradingRun.objects.filter(submission__challenge=challenge, finished_at__isnull=False)
        .order_by()
        .values("submission__enrollment__user__username")
        .annotate(total=Sum(run_duration()))
    )
    return {
        row["submission__enrollment__user__username"]: row["total"].total_seconds()
        for row in rows
        if isinstance(row["total"], timedelta)
    }


def submission_seconds(submission: Submission) -> float | None:
    """How long the grading that gave ``submission`` its result took; None while it has none."""
    if submission.status not in (Submission.Status.GRADED, Submission.Status.FAILED):
        return None
    if submission.started_at is None or submission.finished_at is None:
        return None
    return max((submission.finished_at - submission.started_at).total_seconds(), 0.0)


@dataclass
class ComputeRow:
    """One challenge's gradings per hour, oldest hour first."""

    challenge: str
    jobs: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def total_jobs(self) -> int:
        return sum(self.jobs)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds)


@dataclass
class ComputeHours:
    """Gradings finished per hour over the last ``HOURS_SHOWN`` hours, per challenge."""

    #: the start of each hour, oldest first
    hours: list[datetime]
    rows: list[ComputeRow]

    @property
    def empty(self) -> bool:
        return not any(row.total_jobs for row in self.rows)

    def by_hour(self) -> list[tuple[datetime, int, float]]:
        """(hour, jobs, grading seconds) summed over the challenges: the chart's table."""
        return [
            (
                hour,
                sum(row.jobs[i] for row in self.rows),
                sum(row.seconds[i] for row in self.rows),
            )
            for i, hour in enumerate(self.hours)
        ]


def compute_per_hour(now: datetime | None = None, hours: int = HOURS_SHOWN) -> ComputeHours:
    """Finished gradings (every attempt, re-grades included) of the last ``hours`` hours, by
    challenge and by the hour they finished in."""
    now = now or timezone.now()
    last = now.replace(minute=0, second=0, microsecond=0)
    starts = [last - HOUR * (hours - 1 - i) for i in range(hours)]
    runs = (
        GradingRun.objects.filter(finished_at__gte=starts[0], finished_at__isnull=False)
        .exclude(outcome=GradingRun.Outcome.CANCELLED)
        .values_list("submission__challenge__slug", "started_at", "finished_at")
    )
    rows: dict[str, ComputeRow] = {}
    for slug, started, finished in runs.iterator():
        if finished is None:
            continue
        row = rows.get(slug)
        if row is None:
            row = rows[slug] = ComputeRow(slug, [0] * hours, [0.0] * hours)
        i = min(int((finished - starts[0]) / HOUR), hours - 1)
        row.jobs[i] += 1
        row.seconds[i] += max((finished - started).total_seconds(), 0.0)
    return ComputeHours(starts, sorted(rows.values(), key=lambda row: row.challenge))
