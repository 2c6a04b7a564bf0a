"""The fair queue: which waiting upload a free worker takes next, a queued submission's place in
that order, and about when it will be graded.

Each device has its queue (``Challenge.device``: ``cpu`` or ``gpu``). The order is not the
order messages were sent: a free worker takes the oldest waiting upload of the student (an
enrolment) with the fewest uploads running, then the fewest graded in the last hour; a student
who already has ``GRADER_MAX_RUNNING_PER_STUDENT`` uploads running comes after every student
below that while anyone else waits (alone in the queue, they still get an idle worker). So a
student who queues five uploads holds nobody back: the next student's single upload is taken
as soon as the first of the five runs. Re-grade attempts take a worker only when no upload of
the device waits, or ``GRADER_REGRADE_SHARE`` of the starts when both wait
(``regrade_turn``). The claim itself (``submissions.claim``) locks the row this order names,
so the broker's messages are only a doorbell: whichever message wakes a worker, the fairest
waiting upload is the one it takes.

The place of a queued upload simulates that order: the student's k-th waiting upload (oldest
first) counts as if k more of theirs were running. The wait comes from the throughput of the
live workers: gradings finished per second over the last few minutes, per worker that finished
them, times the workers alive now, or their mean duration per worker when that is faster (an
idle queue finishes few gradings per minute); with none alive there is no honest estimate
(``None``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import (
    Avg,
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from courses.models import Challenge
from submissions.heartbeats import alive_workers
from submissions.models import GradingRun, RegradeBatch, Submission

#: gradings of the challenge the duration averages over, and the guess before there are any
RECENT_RUNS = 20
DEFAULT_GRADING_SECONDS = 30.0
#: the window of the throughput the estimate reads, and of the re-grade share
THROUGHPUT_WINDOW = timedelta(minutes=5)
#: how long one computed order serves the places pages poll for
ORDER_CACHE_SECONDS = 2
#: "the fewest graded in the last hour"
RECENT_GRADED = timedelta(hours=1)
#: outcomes that took a worker's time to the end (a rejection takes a worker's time too)
WORKED = (GradingRun.Outcome.GRADED, GradingRun.Outcome.REJECTED)


@dataclass(frozen=True)
class QueuePlace:
    #: 1 = next to be graded; None unless queued
    position: int | None = None
    #: seconds until its result, about; None unless queued or while no worker is alive
    eta_seconds: int | None = None

    @property
    def text(self) -> str:
        """ "3rd in the queue, about 20 s", for the result page."""
        if self.position is None:
            return ""
        if self.eta_seconds is None:
            return _("%(place)s in the queue; no grading worker is running right now") % {
                "place": ordinal(self.position)
            }
        return _("%(place)s in the queue, about %(eta)s") % {
            "place": ordinal(self.position),
            "eta": duration(self.eta_seconds),
        }


def ordinal(n: int) -> str:
    """ "3rd" in English; in German the number alone ("Platz 3 in der Warteschlange")."""
    if not (get_language() or "en").startswith("en"):
        return str(n)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def duration(seconds: int) -> str:
    if seconds < 120:
        return _("%(seconds)s s") % {"seconds": seconds}
    return _("%(minutes)s min") % {"minutes": round(seconds / 60)}


def coarse_seconds(seconds: float | None) -> int | None:
    """What a student is shown of their grading's duration: whole seconds, at most two
    significant figures (a model that varied its running time to leak what it saw of the
    hidden inputs gets a few bits per upload at most; see docs/security.md)."""
    if seconds is None:
        return None
    whole = max(round(seconds), 0)
    if whole < 100:
        return whole
    step = 10 ** (len(str(whole)) - 2)
    return int(round(whole / step) * step)


# --- the fair order ---------------------------------------------------------------------------


def _per_student(queryset: QuerySet[Submission]) -> Coalesce:
    """How many rows of ``queryset`` the outer row's student (enrolment) has, as a subquery."""
    counted = (
        queryset.filter(enrollment_id=OuterRef("enrollment_id"))
        .order_by()
        .values("enrollment_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _running(device: str) -> QuerySet[Submission]:
    return Submission.objects.filter(status=Submission.Status.RUNNING, challenge__device=device)


def _graded_recently(now: datetime) -> QuerySet[Submission]:
    return Submission.objects.filter(
        status__in=[Submission.Status.GRADED, Submission.Status.FAILED],
        finished_at__gte=now - RECENT_GRADED,
    )


def fair_uploads(device: str, now: datetime | None = None) -> QuerySet[Submission]:
    """The queued uploads of ``device``, fairest first (what the claim takes)."""
    now = now or timezone.now()
    cap = int(settings.GRADER_MAX_RUNNING_PER_STUDENT)
    return (
        Submission.objects.filter(status=Submission.Status.QUEUED, challenge__device=device)
        .annotate(
            student_running=_per_student(_running(device)),
            student_recent=_per_student(_graded_recently(now)),
        )
        .annotate(
            at_cap=Case(When(student_running__gte=cap, then=Value(1)), default=Value(0)),
        )
        # Uploaded first, not sent first: the sweep's re-sending of a message that waited long
        # (``queued_at``) must not send its upload to the back.
        .order_by("at_cap", "student_running", "student_recent", "created_at", "pk")
    )


def waiting_regrades(device: str) -> QuerySet[GradingRun]:
    """Queued attempts of running re-grades of ``device``, in the order they were made (the
    sweep's re-sending changes ``started_at``, not this)."""
    return GradingRun.objects.filter(
        batch__isnull=False,
        batch__status=RegradeBatch.Status.RUNNING,
        outcome=GradingRun.Outcome.QUEUED,
        submission__challenge__device=device,
    ).order_by("pk")


def regrade_turn(device: str, now: datetime | None = None) -> bool:
    """Whether a worker that could take either an upload or a re-grade attempt of ``device``
    takes the attempt: while re-grades have had less than ``GRADER_REGRADE_SHARE`` of the
    recent starts (uploads first when nothing started lately)."""
    share = float(settings.GRADER_REGRADE_SHARE)
    if share <= 0:
        return False
    if share >= 1:
        return True
    now = now or timezone.now()
    started = (
        GradingRun.objects.filter(
            started_at__gte=now - THROUGHPUT_WINDOW, submission__challenge__device=device
        )
        .exclude(outcome__in=[GradingRun.Outcome.QUEUED, GradingRun.Outcome.CANCELLED])
        .aggregate(
            regrades=Count("pk", filter=Q(batch__isnull=False)),
            total=Count("pk"),
        )
    )
    if not started["total"]:
        return False
    return started["regrades"] / started["total"] < share


def fair_rank(
    queued: Sequence[tuple[Any, int, datetime]],
    running: dict[int, int],
    recent: dict[int, int],
) -> list[Any]:
    """The order of ``queued`` (pk, student, created_at) as the claim would take them one by
    one: a student's k-th waiting upload (oldest first) counts as if k more were running."""
    cap = int(settings.GRADER_MAX_RUNNING_PER_STUDENT)
    ahead_of_theirs: dict[int, int] = defaultdict(int)
    keyed = []
    for pk, student, created_at in sorted(queued, key=lambda row: (row[2], str(row[0]))):
        load = running.get(student, 0) + ahead_of_theirs[student]
        ahead_of_theirs[student] += 1
        keyed.append(((load >= cap, load, recent.get(student, 0), created_at, str(pk)), pk))
    return [pk for _key, pk in sorted(keyed, key=lambda item: item[0])]


def _counts(queryset: QuerySet[Submission], students: set[int]) -> dict[int, int]:
    rows = (
        queryset.filter(enrollment_id__in=students)
        .order_by()
        .values("enrollment_id")
        .annotate(n=Count("pk"))
    )
    return {row["enrollment_id"]: row["n"] for row in rows}


def fair_order(device: str, now: datetime | None = None) -> list[str]:
    """The queued uploads of ``device`` (their ids), in the order the claim would take them."""
    now = now or timezone.now()
    queued = list(
        Submission.objects.filter(
            status=Submission.Status.QUEUED, challenge__device=device
        ).values_list("pk", "enrollment_id", "created_at")
    )
    students = {student for _pk, student, _at in queued}
    order = fair_rank(
        queued,
        _counts(_running(device), students),
        _counts(_graded_recently(now), students),
    )
    return [str(pk) for pk in order]


def _cached_order(device: str, submission_id: str, now: datetime) -> list[str]:
    """``fair_order``, shared for ``ORDER_CACHE_SECONDS``: every pending result page polls its
    place every two seconds, and a deadline's queue holds thousands of uploads. An upload the
    cached order does not know yet (just made) reads it afresh."""
    key = f"fair-order:{settings.GRADER_QUEUE_PREFIX}{device}"
    order = cache.get(key)
    if not isinstance(order, list) or submission_id not in order:
        order = fair_order(device, now)
        cache.set(key, order, ORDER_CACHE_SECONDS)
    return order


def fair_position(submission: Submission, now: datetime | None = None) -> tuple[int, int]:
    """(uploads ahead of ``submission`` in the fair order, re-grade attempts ahead of it)."""
    now = now or timezone.now()
    device = submission.challenge.device
    order = _cached_order(device, str(submission.pk), now)
    ahead = order.index(str(submission.pk)) if str(submission.pk) in order else len(order)
    share = float(settings.GRADER_REGRADE_SHARE)
    regrades = 0
    if share > 0:
        waiting = waiting_regrades(device).count()
        # Of every 1/share starts, one is a re-grade while both wait.
        regrades = waiting if share >= 1 else min(waiting, math.floor(ahead * share / (1 - share)))
    return ahead, regrades


# --- the estimate -----------------------------------------------------------------------------


def grading_seconds(challenge_id: int) -> float:
    """Mean duration of the challenge's recent finished gradings (the model's fault included:
    a rejection takes a worker's time too)."""
    recent = (
        GradingRun.objects.filter(
            submission__challenge_id=challenge_id,
            finished_at__isnull=False,
            outcome__in=WORKED,
        )
        .order_by("-finished_at")
        .values_list("pk", flat=True)[:RECENT_RUNS]
    )
    took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    mean = GradingRun.objects.filter(pk__in=list(recent)).aggregate(mean=Avg(took))["mean"]
    if not isinstance(mean, timedelta):
        return DEFAULT_GRADING_SECONDS
    return max(mean.total_seconds(), 1.0)


def throughput(device: str, workers: int, each: float, now: datetime | None = None) -> float:
    """Gradings per second the ``workers`` alive now finish on ``device``: the recent
    throughput per worker that finished them (honest under load, when every grading is slowed
    by the others), or one grading per ``each`` seconds per worker when that is faster (a quiet
    queue finishes few per minute only because few arrive)."""
    now = now or timezone.now()
    recent = GradingRun.objects.filter(
        finished_at__gte=now - THROUGHPUT_WINDOW,
        outcome__in=WORKED,
        submission__challenge__device=device,
    ).aggregate(
        done=Count("pk"),
        by=Count("worker_name", distinct=True, filter=~Q(worker_name="")),
    )
    observed = 0.0
    if recent["done"]:
        per_worker = recent["done"] / THROUGHPUT_WINDOW.total_seconds() / max(recent["by"], 1)
        observed = per_worker * workers
    return max(observed, workers / each)


def queue_place(submission: Submission) -> QueuePlace:
    if submission.status != Submission.Status.QUEUED:
        return QueuePlace()
    now = timezone.now()
    device = submission.challenge.device
    uploads, regrades = fair_position(submission, now)
    ahead = uploads + regrades
    position = ahead + 1
    serving = alive_workers(now)
    if device == Challenge.Device.GPU:
        serving = serving.filter(device__startswith="cuda")
    workers = serving.count()
    if not workers:
        return QueuePlace(position, None)
    running = (
        _running(device).count()
        + GradingRun.objects.filter(
            batch__isnull=False,
            outcome=GradingRun.Outcome.RUNNING,
            submission__challenge__device=device,
        ).count()
    )
    each = grading_seconds(submission.challenge_id)
    rate = throughput(device, workers, each, now)
    # The running jobs are half done on average; the ones ahead go at the workers' throughput;
    # then its own.
    return QueuePlace(position, math.ceil((running / 2 + ahead) / rate + each))
