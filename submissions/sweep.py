"""The periodic sweep: the database is the source of truth, the broker only a doorbell.

Work whose message went missing is sent again; work whose worker died is recorded as lost and
queued again (or given up without counting against the quota after too many attempts).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from submissions.models import GradingRun, Submission
from submissions.regrade import LOST_NOTE, RunSweep, regrade_runs_sweep
from submissions.services import (
    GAVE_UP_MESSAGE,
    grading_time_limits,
    submission_enqueue,
    submission_finish,
    submission_notify,
)

logger = logging.getLogger(__name__)


# --- the sweep --------------------------------------------------------------------------------


@dataclass
class SweepReport:
    resent: list[str]
    requeued: list[str]
    given_up: list[str]
    #: re-grade attempts (GradingRun ids)
    runs: RunSweep = field(default_factory=lambda: RunSweep(resent=[], requeued=[], lost=[]))


def submissions_sweep(now: datetime | None = None) -> SweepReport:
    """Re-queue work whose message or worker went missing; the database is the source of truth.

    * queued too long: the message was lost (a broker restart, a send that failed): send again;
    * running past its hard time limit plus a grace period: the worker died. The open attempt is
      recorded as lost and the submission re-queued, or failed (not counting against the quota)
      once it has used up ``GRADER_MAX_ATTEMPTS``;
    * the same for the attempts of running re-grades (``regrade_runs_sweep``), so that a batch
      whose worker died still completes.
    """
    now = now or timezone.now()
    report = SweepReport(resent=[], requeued=[], given_up=[])
    stale = Submission.objects.filter(
        status=Submission.Status.QUEUED,
        queued_at__lt=now - timedelta(seconds=settings.GRADER_STUCK_QUEUED_SECONDS),
    ).select_related("challenge")
    for submission in stale:
        with transaction.atomic():
            # Conditional on the timestamp we read: two sweeps never both send.
            if Submission.objects.filter(
                pk=submission.pk, status=Submission.Status.QUEUED, queued_at=submission.queued_at
            ).update(queued_at=now):
                submission_enqueue(submission)
                report.resent.append(str(submission.pk))
    grace = timedelta(seconds=settings.GRADER_STUCK_RUNNING_GRACE_SECONDS)
    running = Submission.objects.filter(
        status=Submission.Status.RUNNING, started_at__lt=now - grace
    ).select_related("challenge")
    for submission in running:
        _soft, hard = grading_time_limits(submission.challenge)
        assert submission.started_at is not None
        if submission.started_at + timedelta(seconds=hard) + grace > now:
            continue
        give_up = submission.attempts >= settings.GRADER_MAX_ATTEMPTS
        if _abandon(submission, now, give_up=give_up):
            (report.given_up if give_up else report.requeued).append(str(submission.pk))
    report.runs = regrade_runs_sweep(now)
    runs = report.runs
    if report.resent or report.requeued or report.given_up:
        logger.warning(
            "sweep: resent %d queued, re-queued %d running, gave up %d",
            len(report.resent),
            len(report.requeued),
            len(report.given_up),
        )
    if runs.resent or runs.requeued or runs.lost:
        logger.warning(
            "sweep: re-grade attempts: resent %d queued, re-queued %d running, %d lost",
            len(runs.resent),
            len(runs.requeued),
            len(runs.lost),
        )
    return report


def _abandon(submission: Submission, now: datetime, *, give_up: bool) -> bool:
    with transaction.atomic():
        fields: dict[str, Any] = (
            {
                "status": Submission.Status.FAILED,
                "error": GAVE_UP_MESSAGE,
                "counts_for_quota": False,
                "finished_at": now,
            }
            if give_up
            else {"status": Submission.Status.QUEUED, "started_at": None, "queued_at": now}
        )
        if not submission_finish(submission, **fields):
            return False
        note = LOST_NOTE
        lost = GradingRun.objects.filter(
            # A re-grade attempt of the same submission is not this claim's run.
            submission=submission,
            outcome=GradingRun.Outcome.RUNNING,
            batch__isnull=True,
        ).update(outcome=GradingRun.Outcome.LOST, finished_at=now, error_code="lost", log=note)
        if not lost:  # the worker died before it could open its run
            GradingRun.objects.create(
                submission=submission,
                attempt=submission.attempts,
                started_at=submission.started_at or now,
                finished_at=now,
                outcome=GradingRun.Outcome.LOST,
                error_code="lost",
                log=note,
            )
        if give_up:
            transaction.on_commit(partial(submission_notify, submission), robust=True)
        else:
            submission_enqueue(submission)
    return True
