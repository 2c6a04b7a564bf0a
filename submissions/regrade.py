"""Re-grading a challenge's submissions as one batch: start, record attempts, publish, report.

A batch's attempts write only to their ``GradingRun``. When the last one finishes the batch is
complete and, unless it is a dry run, published: every submission takes its new result in one
transaction, so the leaderboard never shows a half re-graded challenge. Re-grades never count
against a quota and never email the student.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from grader import __version__ as grader_version
from leaderboard.models import Challenge
from submissions.models import GradingRun, RegradeBatch, Submission
from submissions.services import _keep_log, evaluation_outcome, grading_time_limits
from worker.celery import REGRADE_ATTEMPT, app

if TYPE_CHECKING:
    from grader.errors import GradingError, PlatformError
    from grader.evaluate import Evaluation

logger = logging.getLogger(__name__)

FINISHED = Submission.Status.GRADED, Submission.Status.FAILED
PENDING_RUNS = GradingRun.Outcome.QUEUED, GradingRun.Outcome.RUNNING


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
        return f"{self.done}/{self.total} graded, {self.failed} failed"


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
        if user is not None:
            LogEntry.objects.create(
                user=user,
                content_type=ContentType.objects.get_for_model(RegradeBatch),
                object_id=str(batch.pk),
                object_repr=str(batch)[:200],
                action_flag=ADDITION,
                change_message=f"{'Dry run' if dry_run else 'Re-grade'} of {len(rows)}"
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
        if outcome in PENDING_RUNS:
            return
        if GradingRun.objects.filter(batch_id=run.batch_id, outcome__in=PENDING_RUNS).exists():
            return
        completed = RegradeBatch.objects.filter(
            pk=run.batch_id, status=RegradeBatch.Status.RUNNING
        ).update(status=RegradeBatch.Status.COMPLETE, finished_at=timezone.now())
        batch = RegradeBatch.objects.get(pk=run.batch_id)
        if completed and not batch.dry_run:
            regrade_batch_publish(batch)


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


def regrade_batch_publish(batch: RegradeBatch) -> int:
    """Give every submission of a complete batch its new result, in one transaction.

    Attempts that gave up on a platform error leave their submission as it was. Returns the
    number of submissions updated.
    """
    if batch.dry_run:
        raise RegradeRefused("A dry run is never published.")
    now = timezone.now()
    updated = 0
    with transaction.atomic():
        if not RegradeBatch.objects.filter(pk=batch.pk, status=RegradeBatch.Status.COMPLETE).update(
            status=RegradeBatch.Status.PUBLISHED
        ):
            raise RegradeRefused(f"Re-grade {batch.pk} is not complete, or already published.")
        runs = batch.runs.filter(
            outcome__in=[GradingRun.Outcome.GRADED, GradingRun.Outcome.REJECTED]
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
    batch.status = RegradeBatch.Status.PUBLISHED
    logger.info("re-grade %s published: %d submission(s) updated", batch.pk, updated)
    return updated


def regrade_batch_progress(batch: RegradeBatch) -> Progress:
    counts = batch.runs.aggregate(
        done=Count("pk", filter=~Q(outcome__in=PENDING_RUNS)),
        failed=Count(
            "pk",
            filter=Q(outcome__in=[GradingRun.Outcome.REJECTED, GradingRun.Outcome.PLATFORM_ERROR]),
        ),
    )
    return Progress(done=counts["done"], total=batch.total, failed=counts["failed"])


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
