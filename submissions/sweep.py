"""The periodic sweep: the database is the source of truth, the broker only a doorbell.

Work whose message went missing is sent again; work whose worker died is recorded as lost and
queued again (or given up without counting against the quota after too many attempts). The
same for the attempts of running re-grades, so a batch whose worker died still completes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from submissions import doorbell, heartbeats, lifecycle
from submissions.alerts import alerts_check
from submissions.models import GradingRun, RegradeBatch, Submission
from submissions.regrade.attempts import attempt_close
from submissions.results import keep_log, submission_notify
from submissions.services import doorbell_time_limits, grading_time_limits, submission_enqueue

logger = logging.getLogger(__name__)

LOST_NOTE = "the worker went away: no result after the hard time limit"
DEAD_NOTE = "the worker died: its heartbeat stopped while it held this grading"
#: a worker that is alive but recorded nothing (a failed result write): the platform's fault,
#: not a lost worker
NO_RESULT_NOTE = "no result after the hard time limit, although the worker is alive"


@dataclass(frozen=True)
class Abandoned:
    """How the sweep records an attempt it stopped waiting for, chosen by what it found: the
    holder's heartbeat stopped, or the hard time limit passed with the holder alive or not."""

    outcome: GradingRun.Outcome
    error_code: str
    note: str


#: the holder's heartbeat stopped
WORKER_DEAD = Abandoned(GradingRun.Outcome.LOST, "lost", DEAD_NOTE)
#: past the hard time limit, and no live holder (a worker older than heartbeats)
WORKER_GONE = Abandoned(GradingRun.Outcome.LOST, "lost", LOST_NOTE)
#: past the hard time limit, its holder alive: the platform failed to record a result
NO_RESULT = Abandoned(GradingRun.Outcome.PLATFORM_ERROR, "no_result", NO_RESULT_NOTE)


@dataclass
class RunSweep:
    resent: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)


@dataclass
class SweepReport:
    resent: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    given_up: list[str] = field(default_factory=list)
    #: re-grade attempts (GradingRun ids)
    runs: RunSweep = field(default_factory=RunSweep)

    def summary(self) -> str:
        """ "nothing to do", or the counts of what it did, for beat's log."""
        counts = {
            "resent": len(self.resent) + len(self.runs.resent),
            "re-queued": len(self.requeued) + len(self.runs.requeued),
            "given up": len(self.given_up),
            "lost": len(self.runs.lost),
        }
        done = [f"{n} {what}" for what, n in counts.items() if n]
        return ", ".join(done) if done else "nothing to do"


def submissions_sweep(
    now: datetime | None = None, *, queued_before: datetime | None = None
) -> SweepReport:
    """Re-queue work whose message or worker went missing.

    * queued and marked unsent (its send failed), or queued too long (a message lost in a broker
      restart), or queued before ``queued_before``: send again. A worker that (re)connects to
      the broker passes the moment it connected: a broker that restarted without persistence
      lost every message sent before that, and waiting ``GRADER_STUCK_QUEUED_SECONDS`` for them
      would leave a whole queue idle for minutes (claims are conditional: a message that did
      survive only makes a second one a no-op);
    * running, held by a worker whose heartbeat stopped ``GRADER_WORKER_DEAD_SECONDS`` ago: the
      worker died. Its attempt is recorded as lost and the submission re-queued at once, or
      failed (not counting against the quota) once it has used up ``GRADER_MAX_ATTEMPTS``;
    * running past its hard time limit plus a grace period (a worker older than heartbeats, or
      alive but without a result): the same, labelled for what it is;
    * the same for the attempts of running re-grades (``regrade_runs_sweep``).
    """
    now = now or timezone.now()
    report = SweepReport()
    cutoff = _queued_cutoff(now, queued_before)
    stale = Submission.objects.filter(
        Q(unsent=True) | Q(queued_at__lt=cutoff),
        status=Submission.Status.QUEUED,
    ).select_related("challenge")
    # Oldest first: the broker is first in, first out, and the queue keeps its order.
    for submission in stale.order_by("queued_at"):
        with transaction.atomic():
            if lifecycle.resend(submission, now):
                submission_enqueue(submission)
                report.resent.append(str(submission.pk))
    dead_claims = GradingRun.objects.filter(
        heartbeats.held_by_dead(now),
        submission=OuterRef("pk"),
        outcome=GradingRun.Outcome.RUNNING,
        batch__isnull=True,
    )
    dead = Submission.objects.filter(Exists(dead_claims), status=Submission.Status.RUNNING)
    for submission in dead.select_related("challenge"):
        give_up = submission.attempts >= settings.GRADER_MAX_ATTEMPTS
        if _abandon(submission, now, give_up=give_up, why=WORKER_DEAD):
            (report.given_up if give_up else report.requeued).append(str(submission.pk))
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
        alive = GradingRun.objects.filter(
            heartbeats.holder_alive(now),
            submission=submission,
            outcome=GradingRun.Outcome.RUNNING,
            batch__isnull=True,
        ).exists()
        if _abandon(submission, now, give_up=give_up, why=NO_RESULT if alive else WORKER_GONE):
            (report.given_up if give_up else report.requeued).append(str(submission.pk))
    report.runs = regrade_runs_sweep(now, queued_before=queued_before)
    _log(report)
    try:
        alerts_check(now)
    except Exception:  # never let alerting keep the sweep from its work
        logger.exception("checking the alerts failed")
    return report


def _log(report: SweepReport) -> None:
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


def _abandon(submission: Submission, now: datetime, *, give_up: bool, why: Abandoned) -> bool:
    """Record the attempt as ``why`` says (lost, or a platform error when its worker is alive
    but recorded nothing); re-queue the submission or give it up. The submission first, then
    its run, as every transition of a claim."""
    with transaction.atomic():
        moved = (
            lifecycle.give_up(submission, now) if give_up else lifecycle.requeue(submission, now)
        )
        if not moved:
            return False
        recorded = {"error_code": why.error_code, "log": why.note}
        if not lifecycle.run_abandon(submission, why.outcome, now, **recorded):
            # The worker died before it could open its run.
            lifecycle.run_lost_unopened(submission, why.outcome, now, **recorded)
        if give_up:
            doorbell.after_commit(
                submission_notify, submission, what=f"emailing that {submission.pk} gave up"
            )
        else:
            submission_enqueue(submission)
    return True


def _queued_cutoff(now: datetime, queued_before: datetime | None) -> datetime:
    """Work queued before this is presumed to have lost its message."""
    cutoff = now - timedelta(seconds=settings.GRADER_STUCK_QUEUED_SECONDS)
    return max(cutoff, queued_before) if queued_before is not None else cutoff


def regrade_runs_sweep(now: datetime, *, queued_before: datetime | None = None) -> RunSweep:
    """Re-grade attempts whose message or worker went missing, so every batch completes.

    * queued in a running batch and marked unsent, or queued too long (or before
      ``queued_before``, as in ``submissions_sweep``): the message was lost: send it again;
    * running, held by a worker whose heartbeat stopped, or past its hard time limit plus the
      grace period: the worker died. The attempt goes back to the queue, or, once it has had
      ``GRADER_MAX_ATTEMPTS``, is recorded as lost (the submission keeps its old result) so the
      rest of the batch can still publish.
    """
    report = RunSweep()
    stale = GradingRun.objects.filter(
        Q(unsent=True) | Q(started_at__lt=_queued_cutoff(now, queued_before)),
        batch__status=RegradeBatch.Status.RUNNING,
        outcome=GradingRun.Outcome.QUEUED,
    ).select_related("submission__challenge")
    for run in stale.order_by("started_at"):
        with transaction.atomic():
            if lifecycle.run_resend(run, now):
                _ring(run)
                report.resent.append(run.pk)
    grace = timedelta(seconds=settings.GRADER_STUCK_RUNNING_GRACE_SECONDS)
    running = GradingRun.objects.filter(
        Q(started_at__lt=now - grace) | heartbeats.held_by_dead(now),
        batch__isnull=False,
        outcome=GradingRun.Outcome.RUNNING,
    ).select_related("submission__challenge")
    for run in running:
        _soft, hard = grading_time_limits(run.submission.challenge)
        dead = heartbeats.run_holder_dead(run, now)
        if not dead and run.started_at + timedelta(seconds=hard) + grace > now:
            continue
        why = WORKER_DEAD if dead else WORKER_GONE
        log = "\n".join(filter(None, [run.log, why.note]))
        if run.attempt + 1 >= settings.GRADER_MAX_ATTEMPTS:
            if attempt_close(run, why.outcome, error_code=why.error_code, log=log):
                report.lost.append(run.pk)
            continue
        with transaction.atomic():
            if lifecycle.run_requeue(
                run,
                if_started_at=run.started_at,
                attempt=run.attempt + 1,
                started_at=now,
                error_code=why.error_code,
                log=keep_log(log),
            ):
                _ring(run)
                report.requeued.append(run.pk)
    return report


def _ring(run: GradingRun) -> None:
    challenge = run.submission.challenge
    soft, hard = doorbell_time_limits(challenge)
    doorbell.ring_after_commit(
        doorbell.REGRADE_ATTEMPT,
        run.pk,
        soft=soft,
        hard=hard,
        device=challenge.device,
        on_failure=partial(lifecycle.run_mark_unsent, run.pk),
    )
