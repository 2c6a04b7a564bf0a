"""Worker heartbeats: which grading processes are alive, so the work of a dead one moves on.

Each grading process beats its ``WorkerHeartbeat`` row every ``GRADER_HEARTBEAT_SECONDS`` (the
worker's thread, ``worker.heartbeat``); every claim names the process that holds it
(``GradingRun.worker_name``). A process that missed its beats for ``GRADER_WORKER_DEAD_SECONDS``
is dead: the sweep re-queues what it held and a re-delivered message may take it over
(``lifecycle.takeover``), in seconds rather than after the job's hard time limit.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from submissions.models import GradingRun, WorkerHeartbeat


def dead_after() -> timedelta:
    return timedelta(seconds=float(settings.GRADER_WORKER_DEAD_SECONDS))


def alive_workers(now: datetime | None = None) -> QuerySet[WorkerHeartbeat]:
    """Heartbeats of processes alive at ``now`` (beat recently, not stopped)."""
    now = now or timezone.now()
    return WorkerHeartbeat.objects.filter(beat_at__gte=now - dead_after(), stopped_at__isnull=True)


def holder_alive(now: datetime) -> Exists:
    """For a ``GradingRun`` queryset: whether the process named on the claim is alive."""
    return Exists(alive_workers(now).filter(name=OuterRef("worker_name")))


def held_by_dead(now: datetime) -> Q:
    """``GradingRun`` rows whose claim names a process that is no longer alive (a run with no
    name predates heartbeats, or a worker that died before it could write one: the hard time
    limit still catches those)."""
    return ~Q(worker_name="") & ~Q(holder_alive(now))


def run_holder_dead(run: GradingRun, now: datetime | None = None) -> bool:
    """Whether the process holding this run's claim is dead."""
    if not run.worker_name:
        return False
    return not alive_workers(now).filter(name=run.worker_name).exists()


def beat(
    name: str, *, host: str, device: str, runner: str = "", job: str | None = None
) -> WorkerHeartbeat:
    """Record that ``name`` is alive now (and, with ``job``, what it grades: "" for nothing)."""
    now = timezone.now()
    fields: dict[str, object] = {"beat_at": now, "host": host[:200], "device": device[:32]}
    if runner:
        fields["runner"] = runner[:32]
    if job is not None:
        fields["current_job"] = job[:80]
    updated = WorkerHeartbeat.objects.filter(name=name, stopped_at__isnull=True).update(**fields)
    if not updated:
        heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
            name=name, defaults={**fields, "started_at": now, "stopped_at": None}
        )
        return heartbeat
    return WorkerHeartbeat.objects.get(name=name)


def stopped(name: str) -> None:
    """A process that stops cleanly says so: it is gone, and holds nothing any more."""
    WorkerHeartbeat.objects.filter(name=name).update(stopped_at=timezone.now(), current_job="")
