"""Re-grading a challenge's submissions as one batch: start, record attempts, publish, report.

A batch's attempts write only to their ``GradingRun``. When the last one finishes the batch is
complete and, unless it is a dry run, published: every submission takes its new result in one
transaction, so the leaderboard never shows a half re-graded challenge. Re-grades never count
against a quota and never email the student.

The life of a batch::

    running ──last attempt──▶ complete ──publish──▶ published
       │                         │   (automatic unless a dry run, or held: the semester closed,
       └────────cancel───────────┴──▶ cancelled      the rules changed, newer results exist)

A complete batch (a dry run, or one held back) is published by staff from the admin or with
``manage.py regrade --publish``; publishing checks again that its results are still the newest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from grader import __version__ as grader_version
from leaderboard.models import Challenge
from submissions.models import GradingRun, RegradeBatch, Submission
from submissions.services import _keep_log, evaluation_outcome, grading_time_limits
from submissions.standings import standings_refresh
from worker.celery import REGRADE_ATTEMPT, app

if TYPE_CHECKING:
    from grader.errors import GradingError, PlatformError
    from grader.evaluate import Evaluation

logger = logging.getLogger(__name__)

FINISHED = Submission.Status.GRADED, Submission.Status.FAILED
LOST_NOTE = "the worker went away: no result after the hard time limit"


class RegradeRefused(Exception):
    """A re-grade that may not start (or be published) now; the message says why."""


@dataclass(frozen=True)
class Change:
    submission_id: Any
    handle: str
    username: str
    old_score: float | None
    new_score: float | None
    old_passed: bool | None
    new_passed: bool | None


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    failed: int

    def __str__(self) -> str:
        return f"{self.done} of {self.total} graded, {self.failed} failure(s)"

    @classmethod
    def of(cls, batch: RegradeBatch) -> Progress:
        """From a batch annotated by ``RegradeBatch.objects.with_progress()``, else one query."""
        if not hasattr(batch, "done"):
            batch = RegradeBatch.objects.with_progress().get(pk=batch.pk)
        return cls(done=batch.done, total=batch.total, failed=batch.failed)  # type: ignore[attr-defined]


def _log(user: Any, batch: RegradeBatch, flag: int, message: str) -> None:
    """The admin log's record of who did what to a batch, and why."""
    if user is None:
        return
    LogEntry.objects.create(
        user=user,
        content_type=ContentType.objects.get_for_model(RegradeBatch),
        object_id=str(batch.pk),
        object_repr=str(batch)[:200],
        action_flag=flag,
        change_message=message,
    )


# --- starting ---------------------------------------------------------------------------------


def _send(run_id: int, soft: int, hard: int) -> None:
    # By name, like the grading task: the web process never imports worker.tasks.
    app.send_task(REGRADE_ATTEMPT, args=[run_id], soft_time_limit=soft, time_limit=hard)


def regrade_batch_start(
    challenge: Challenge,
    user: Any,
    reason: str,
    *,
    submissions: Iterable[Submission] | None = None,
    dry_run: bool = False,
) -> RegradeBatch:
    """One queued attempt per finished submission of ``challenge`` (default: all of them),
    sent after commit; recorded in the admin log when ``user`` is given."""
    if challenge.semester.closed:
        raise RegradeRefused(
            f"The {challenge.semester} semester is closed: reopen it before re-grading."
        )
    if not reason.strip():
        raise RegradeRefused("Say why: a re-grade needs a reason.")
    chosen = Submission.objects.filter(challenge=challenge, status__in=FINISHED)
    if submissions is not None:
        chosen = chosen.filter(pk__in=[s.pk for s in submissions])
    now = timezone.now()
    with transaction.atomic():
        rows = list(chosen.values_list("pk", "score", "passed"))
        if not rows:
            raise RegradeRefused(f"{challenge.slug}: no graded or failed submission to re-grade.")
        batch = RegradeBatch.objects.create(
            challenge=challenge,
            created_by=user,
            reason=reason.strip(),
            dry_run=dry_run,
            total=len(rows),
            created_at=now,
            threshold=challenge.threshold,
            score_key=challenge.score_key,
        )
        GradingRun.objects.bulk_create(
            GradingRun(
                submission_id=pk,
                batch=batch,
                attempt=0,
                outcome=GradingRun.Outcome.QUEUED,
                grader_version=grader_version,
                started_at=now,
                previous_score=score,
                previous_passed=passed,
            )
            for pk, score, passed in rows
        )
        _log(
            user,
            batch,
            ADDITION,
            f"{'Dry run' if dry_run else 'Re-grade'} of {len(rows)}"
            f" submission(s) of {challenge.slug}: {batch.reason}",
        )
        soft, hard = grading_time_limits(challenge)
        for run_id in GradingRun.objects.filter(batch=batch).values_list("pk", flat=True):
            transaction.on_commit(partial(_send, run_id, soft, hard), robust=True)
    logger.info("re-grade %s started by %s: %s", batch.pk, user, batch.reason)
    return batch


# --- the worker's side ------------------------------------------------------------------------


def regrade_run_claim(run_id: int) -> GradingRun | None:
    """Move a queued re-grade attempt to running; None if it is not queued (re-delivered)."""
    updated = GradingRun.objects.filter(
        pk=run_id, batch__isnull=False, outcome=GradingRun.Outcome.QUEUED
    ).update(outcome=GradingRun.Outcome.RUNNING, started_at=timezone.now())
    if not updated:
        return None
    return GradingRun.objects.select_related("batch", "submission__challenge").get(pk=run_id)


def _close(run: GradingRun, outcome: str, **fields: Any) -> None:
    """Record the attempt's outcome; the last one of the batch completes (and publishes) it."""
    assert run.batch_id is not None
    with transaction.atomic():
        # Serialise the attempts of a batch as they finish, so exactly one sees itself last.
        RegradeBatch.objects.select_for_update().filter(pk=run.batch_id).exists()
        fields = {"outcome": outcome, "finished_at": timezone.now(), **fields}
        if "log" in fields:
            fields["log"] = _keep_log(fields["log"])
        GradingRun.objects.filter(pk=run.pk, outcome=GradingRun.Outcome.RUNNING).update(**fields)
        if outcome in GradingRun.PENDING:
            return
        if GradingRun.objects.filter(
            batch_id=run.batch_id, outcome__in=GradingRun.PENDING
        ).exists():
            return
        completed = RegradeBatch.objects.filter(
            pk=run.batch_id, status=RegradeBatch.Status.RUNNING
        ).update(status=RegradeBatch.Status.COMPLETE, finished_at=timezone.now())
        if not completed:  # cancelled while this attempt ran
            return
        # Whoever started it hears how it ended, once the outcome below is committed.
        transaction.on_commit(partial(regrade_batch_notify, run.batch_id), robust=True)
        batch = RegradeBatch.objects.select_related("challenge__semester").get(pk=run.batch_id)
        if batch.dry_run:
            return
        try:
            regrade_batch_publish(batch)
        except RegradeRefused as exc:
            # Held, not lost: staff see why on the batch and publish once it is fixed.
            RegradeBatch.objects.filter(pk=batch.pk).update(note=f"Held back: {exc}")
            logger.warning("re-grade %s complete but held back: %s", batch.pk, exc)


def regrade_run_record_result(run: GradingRun, evaluation: Evaluation) -> None:
    score, passed, metrics = evaluation_outcome(run.submission.challenge, evaluation)
    _close(
        run,
        GradingRun.Outcome.GRADED,
        score=score,
        passed=passed,
        metrics=metrics,
        dataset_hash=evaluation.dataset_hash,
        grader_version=evaluation.grader_version,
        runner=evaluation.runner,
        log=evaluation.log,
    )


def regrade_run_record_rejection(run: GradingRun, error: GradingError) -> None:
    _close(
        run,
        GradingRun.Outcome.REJECTED,
        error_code=error.code[:64],
        error=error.message,
        log=error.detail,
        dataset_hash=run.dataset_hash,
        runner=run.runner,
    )


def regrade_run_record_platform_error(
    run: GradingRun, error: PlatformError, *, give_up: bool
) -> None:
    """Back to queued for the task's retry, or given up: the submission keeps its old result."""
    log = "\n".join(filter(None, [error.message, error.detail]))
    if give_up:
        _close(run, GradingRun.Outcome.PLATFORM_ERROR, error_code=error.code[:64], log=log)
    else:
        _close(run, GradingRun.Outcome.QUEUED, error_code=error.code[:64], log=log)


# --- publishing and reporting -----------------------------------------------------------------


def regrade_batch_check(batch: RegradeBatch) -> None:
    """Raise ``RegradeRefused`` if publishing ``batch`` now would publish the wrong numbers."""
    challenge = batch.challenge
    if challenge.semester.closed:
        raise RegradeRefused(
            f"the {challenge.semester} semester is closed: reopen it, then publish the re-grade."
        )
    if batch.threshold is not None and batch.threshold != challenge.threshold:
        raise RegradeRefused(
            f"the pass threshold changed since the re-grade started ({batch.threshold:g} →"
            f" {challenge.threshold:g}): start a new re-grade."
        )
    if batch.score_key and batch.score_key != challenge.score_key:
        raise RegradeRefused(
            f"the ranked figure changed since the re-grade started ({batch.score_key} →"
            f" {challenge.score_key}): start a new re-grade."
        )
    newer = (
        RegradeBatch.objects.filter(
            challenge=challenge,
            status=RegradeBatch.Status.PUBLISHED,
            created_at__gt=batch.created_at,
        )
        .values_list("pk", flat=True)
        .first()
    )
    if newer is not None:
        raise RegradeRefused(
            f"re-grade #{newer}, started later, is already published: publishing this one would"
            " bring back older results."
        )
    hashes = set(
        batch.runs.filter(outcome=GradingRun.Outcome.GRADED)
        .exclude(dataset_hash="")
        .values_list("dataset_hash", flat=True)
        .distinct()
    )
    if len(hashes) > 1:
        raise RegradeRefused(
            "the hidden test data changed while the re-grade ran (its attempts saw"
            f" {len(hashes)} versions): start a new re-grade."
        )
    if hashes:
        # Uploads graded since then on other data: the test set was replaced after this batch.
        (used,) = hashes
        if (
            GradingRun.objects.filter(
                submission__challenge=challenge,
                batch__isnull=True,
                outcome=GradingRun.Outcome.GRADED,
                finished_at__gt=batch.created_at,
            )
            .exclude(dataset_hash__in=["", used])
            .exists()
        ):
            raise RegradeRefused(
                "the hidden test data was replaced after this re-grade ran: start a new re-grade."
            )


def regrade_batch_publish(batch: RegradeBatch, user: Any = None) -> int:
    """Give every submission of a complete batch its new result, in one transaction.

    A dry run is published the same way when staff decide to (``user`` is recorded). Attempts
    that gave no result (platform error, lost worker) leave their submission as it was. Returns
    the number of submissions updated.
    """
    now = timezone.now()
    updated = 0
    with transaction.atomic():
        # Locked: two publishes (or a publish and a cancel) of one batch never interleave.
        locked = (
            RegradeBatch.objects.select_for_update(of=("self",))
            .select_related("challenge__semester")
            .filter(pk=batch.pk, status=RegradeBatch.Status.COMPLETE)
            .first()
        )
        if locked is None:
            raise RegradeRefused(f"re-grade #{batch.pk} is not complete, or already published.")
        regrade_batch_check(locked)
        runs = list(
            batch.runs.filter(
                outcome__in=[GradingRun.Outcome.GRADED, GradingRun.Outcome.REJECTED]
            ).select_related("submission")
        )
        for run in runs:
            graded = run.outcome == GradingRun.Outcome.GRADED
            # finished_at moves on: the board's cache key (board_version) changes with it.
            updated += Submission.objects.filter(pk=run.submission_id, status__in=FINISHED).update(
                status=Submission.Status.GRADED if graded else Submission.Status.FAILED,
                score=run.score if graded else None,
                passed=run.passed if graded else None,
                metrics=run.metrics,
                error="" if graded else run.error,
                finished_at=now,
            )
        standings_refresh((run.submission.enrollment_id, batch.challenge_id) for run in runs)
        RegradeBatch.objects.filter(pk=batch.pk).update(
            status=RegradeBatch.Status.PUBLISHED, published_at=now, published_by=user, note=""
        )
        _log(user, batch, CHANGE, f"Published: {updated} submission(s) took the new results.")
    batch.status = RegradeBatch.Status.PUBLISHED
    batch.published_at, batch.published_by, batch.note = now, user, ""
    logger.info("re-grade %s published: %d submission(s) updated", batch.pk, updated)
    return updated


def regrade_batch_cancel(batch: RegradeBatch, user: Any = None, reason: str = "") -> int:
    """Stop a running batch, or drop a complete one unpublished; nothing is published.

    Attempts not yet taken by a worker are cancelled; those already running finish and are
    recorded for the report, but the batch no longer completes. Returns the attempts cancelled.
    """
    note = f"Cancelled{f' by {user}' if user else ''}" + (f": {reason}" if reason else ".")
    with transaction.atomic():
        if (
            not RegradeBatch.objects.select_for_update()
            .filter(
                pk=batch.pk, status__in=[RegradeBatch.Status.RUNNING, RegradeBatch.Status.COMPLETE]
            )
            .update(status=RegradeBatch.Status.CANCELLED, finished_at=timezone.now(), note=note)
        ):
            raise RegradeRefused(f"re-grade #{batch.pk} is already published or cancelled.")
        cancelled = batch.runs.filter(outcome=GradingRun.Outcome.QUEUED).update(
            outcome=GradingRun.Outcome.CANCELLED, finished_at=timezone.now()
        )
        _log(user, batch, CHANGE, note)
    batch.status, batch.note = RegradeBatch.Status.CANCELLED, note
    logger.info("re-grade %s cancelled: %d attempt(s) not run", batch.pk, cancelled)
    return cancelled


def regrade_batch_notify(batch_id: int) -> None:
    """Email whoever started a batch that it finished: published, or waiting for them and why.

    A re-grade of a whole challenge can take an hour; nobody should have to watch the page.
    """
    batch = (
        RegradeBatch.objects.select_related("challenge", "created_by").filter(pk=batch_id).first()
    )
    if batch is None or batch.created_by is None or not batch.created_by.email:
        return
    if batch.status == RegradeBatch.Status.PUBLISHED:
        outcome = "It is published: the leaderboard shows the new results."
    elif batch.dry_run:
        outcome = (
            "It was a dry run: nothing is published. Publish it from the challenge's admin page"
            " if its results are right."
        )
    else:
        outcome = f"It is NOT published. {batch.note}"
    report = settings.SITE_URL + reverse("regrade_report", args=[batch.pk])
    page = settings.SITE_URL + reverse(
        "admin:leaderboard_challenge_change", args=[batch.challenge_id]
    )
    send_mail(
        subject=f"[{batch.challenge.title}] Re-grade #{batch.pk}: {batch.get_status_display()}",
        message=(
            f"Re-grade #{batch.pk} of {batch.challenge.slug} ({batch.reason}) finished:"
            f" {Progress.of(batch)}, {len(regrade_batch_report(batch))} submission(s) changed.\n\n"
            f"{outcome}\n\nWhat changed: {report}\nThe challenge's re-grades: {page}\n"
        ),
        from_email=None,
        recipient_list=[batch.created_by.email],
    )


def regrade_batch_report(batch: RegradeBatch) -> list[Change]:
    """Every submission whose score or pass flag the batch changed (or would change)."""
    runs = (
        batch.runs.filter(outcome__in=[GradingRun.Outcome.GRADED, GradingRun.Outcome.REJECTED])
        .select_related("submission__enrollment__user")
        .order_by("submission__enrollment__handle", "submission__created_at")
    )
    return [
        Change(
            submission_id=run.submission_id,
            handle=run.submission.enrollment.handle,
            username=run.submission.enrollment.user.get_username(),
            old_score=run.previous_score,
            new_score=run.score,
            old_passed=run.previous_passed,
            new_passed=run.passed,
        )
        for run in runs
        if run.score != run.previous_score or run.passed != run.previous_passed
    ]


# --- the sweep's part -------------------------------------------------------------------------


@dataclass
class RunSweep:
    resent: list[int]
    requeued: list[int]
    lost: list[int]


def regrade_runs_sweep(now: datetime) -> RunSweep:
    """Re-grade attempts whose message or worker went missing, so every batch completes.

    * queued too long in a running batch: the message was lost: send it again;
    * running past its hard time limit plus the grace period: the worker died. The attempt goes
      back to the queue, or, once it has had ``GRADER_MAX_ATTEMPTS``, is recorded as lost (the
      submission keeps its old result) so the rest of the batch can still publish.
    """
    report = RunSweep(resent=[], requeued=[], lost=[])
    stale = GradingRun.objects.filter(
        batch__status=RegradeBatch.Status.RUNNING,
        outcome=GradingRun.Outcome.QUEUED,
        started_at__lt=now - timedelta(seconds=settings.GRADER_STUCK_QUEUED_SECONDS),
    ).select_related("submission__challenge")
    for run in stale:
        with transaction.atomic():
            # Conditional on the timestamp read: two sweeps never both send.
            if GradingRun.objects.filter(
                pk=run.pk, outcome=GradingRun.Outcome.QUEUED, started_at=run.started_at
            ).update(started_at=now):
                soft, hard = grading_time_limits(run.submission.challenge)
                transaction.on_commit(partial(_send, run.pk, soft, hard), robust=True)
                report.resent.append(run.pk)
    grace = timedelta(seconds=settings.GRADER_STUCK_RUNNING_GRACE_SECONDS)
    running = GradingRun.objects.filter(
        batch__isnull=False, outcome=GradingRun.Outcome.RUNNING, started_at__lt=now - grace
    ).select_related("submission__challenge")
    for run in running:
        soft, hard = grading_time_limits(run.submission.challenge)
        if run.started_at + timedelta(seconds=hard) + grace > now:
            continue
        log = "\n".join(filter(None, [run.log, LOST_NOTE]))
        if run.attempt + 1 >= settings.GRADER_MAX_ATTEMPTS:
            _close(run, GradingRun.Outcome.LOST, error_code="lost", log=log)
            report.lost.append(run.pk)
            continue
        with transaction.atomic():
            if GradingRun.objects.filter(
                pk=run.pk, outcome=GradingRun.Outcome.RUNNING, started_at=run.started_at
            ).update(
                outcome=GradingRun.Outcome.QUEUED,
                attempt=run.attempt + 1,
                started_at=now,
                error_code="lost",
                log=_keep_log(log),
            ):
                transaction.on_commit(partial(_send, run.pk, soft, hard), robust=True)
                report.requeued.append(run.pk)
    return report
