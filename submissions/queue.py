"""Where a queued submission stands: its place in the queue and about when it will be graded.

Each device has its queue (``Challenge.device``: ``cpu`` or ``gpu``), served in the order
messages were sent (``queued_at``), so the place counts the queued submissions of every challenge
on the same device sent before it. The wait comes from how long recent gradings of its challenge
took and how many workers serving that device are alive (GPU workers serve the CPU queue too);
with none alive there is no honest estimate (``None``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Avg, DurationField, ExpressionWrapper, F, Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from courses.models import Challenge
from submissions.heartbeats import alive_workers
from submissions.models import GradingRun, Submission

#: gradings of the challenge the estimate averages over, and the guess before there are any
RECENT_RUNS = 20
DEFAULT_GRADING_SECONDS = 30.0


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


def grading_seconds(challenge_id: int) -> float:
    """Mean duration of the challenge's recent finished gradings (the model's fault included:
    a rejection takes a worker's time too)."""
    recent = (
        GradingRun.objects.filter(
            submission__challenge_id=challenge_id,
            finished_at__isnull=False,
            outcome__in=[GradingRun.Outcome.GRADED, GradingRun.Outcome.REJECTED],
        )
        .order_by("-finished_at")
        .values_list("pk", flat=True)[:RECENT_RUNS]
    )
    took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    mean = GradingRun.objects.filter(pk__in=list(recent)).aggregate(mean=Avg(took))["mean"]
    if not isinstance(mean, timedelta):
        return DEFAULT_GRADING_SECONDS
    return max(mean.total_seconds(), 1.0)


def queue_place(submission: Submission) -> QueuePlace:
    if submission.status != Submission.Status.QUEUED:
        return QueuePlace()
    device = submission.challenge.device
    ahead = (
        Submission.objects.filter(status=Submission.Status.QUEUED, challenge__device=device)
        .filter(
            Q(queued_at__lt=submission.queued_at)
            | Q(queued_at=submission.queued_at, pk__lt=submission.pk)
        )
        .count()
    )
    position = ahead + 1
    serving = alive_workers(timezone.now())
    if device == Challenge.Device.GPU:
        serving = serving.filter(device__startswith="cuda")
    workers = serving.count()
    if not workers:
        return QueuePlace(position, None)
    running = Submission.objects.filter(
        status=Submission.Status.RUNNING, challenge__device=device
    ).count()
    each = grading_seconds(submission.challenge_id)
    # The running jobs are half done on average; the ones ahead share the workers; then its own.
    waves = (running / 2 + ahead) / workers
    return QueuePlace(position, math.ceil((waves + 1) * each))
