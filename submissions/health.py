"""The platform's health as staff see it (``/staff/health/``), as alerts read it, and as the
metrics export it: the workers and their heartbeats, the queue per challenge, recent failures.
Each part is one or two grouped queries, whatever the number of rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from submissions.heartbeats import dead_after
from submissions.models import GradingRun, Submission, WorkerHeartbeat

HOUR = timedelta(hours=1)
#: workers whose last beat is older than this are no longer listed
FORGET_WORKERS_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class WorkerRow:
    name: str
    host: str
    device: str
    runner: str
    beat_at: datetime
    started_at: datetime
    current_job: str
    alive: bool
    jobs_last_hour: int


@dataclass(frozen=True)
class QueueRow:
    challenge: str
    depth: int
    oldest_queued_at: datetime | None

    def oldest_seconds(self, now: datetime) -> float:
        if self.oldest_queued_at is None:
            return 0.0
        return max((now - self.oldest_queued_at).total_seconds(), 0.0)


def workers(now: datetime | None = None) -> list[WorkerRow]:
    now = now or timezone.now()
    rows = WorkerHeartbeat.objects.filter(beat_at__gte=now - FORGET_WORKERS_AFTER)
    done = dict(
        GradingRun.objects.filter(finished_at__gte=now - HOUR)
        .exclude(worker_name="")
        .values_list("worker_name")
        .annotate(n=Count("pk"))
        .values_list("worker_name", "n")
    )
    cutoff = now - dead_after()
    return [
        WorkerRow(
            name=w.name,
            host=w.host,
            device=w.device,
            runner=w.runner,
            beat_at=w.beat_at,
            started_at=w.started_at,
            current_job=w.current_job,
            alive=w.stopped_at is None and w.beat_at >= cutoff,
            jobs_last_hour=done.get(w.name, 0),
        )
        for w in rows
    ]


def queues() -> list[QueueRow]:
    """Queued submissions per challenge, with the time the oldest went into the queue."""
    rows = (
        Submission.objects.filter(status=Submission.Status.QUEUED)
        .values("challenge__slug")
        .annotate(depth=Count("pk"), oldest=Min("queued_at"))
        .order_by("challenge__slug")
    )
    return [QueueRow(r["challenge__slug"], r["depth"], r["oldest"]) for r in rows]


def oldest_queued_seconds(now: datetime | None = None) -> float:
    now = now or timezone.now()
    oldest = Submission.objects.filter(status=Submission.Status.QUEUED).aggregate(
        oldest=Min("queued_at")
    )["oldest"]
    return 0.0 if oldest is None else max((now - oldest).total_seconds(), 0.0)


def failures_last_hour(now: datetime | None = None) -> list[tuple[str, int]]:
    """Gradings that ended without a result in the last hour, by error code, most first."""
    now = now or timezone.now()
    rows = (
        GradingRun.objects.filter(finished_at__gte=now - HOUR, outcome__in=GradingRun.FAILURES)
        .values("error_code")
        .annotate(n=Count("pk"))
        .order_by("-n", "error_code")
    )
    return [(r["error_code"] or "unknown", r["n"]) for r in rows]


def any_worker_alive(now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return WorkerHeartbeat.objects.filter(
        Q(stopped_at__isnull=True), beat_at__gte=now - dead_after()
    ).exists()


def workers_ever_seen() -> bool:
    return WorkerHeartbeat.objects.aggregate(last=Max("beat_at"))["last"] is not None


#: further lines for the health page from apps above this one (LTI grade passback failures):
#: each callable returns a sentence for staff, or None when all is well
HEALTH_NOTES: list[Callable[[], str | None]] = []


def notes() -> list[str]:
    """The sentences of ``HEALTH_NOTES`` that have something to say."""
    return [note for note in (source() for source in HEALTH_NOTES) if note]
