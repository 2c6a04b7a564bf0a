"""Submitting, queueing, claiming and recording results: used by the views, the API, the admin
and the worker. Nothing here imports torch or runs the grader; the worker hands in results."""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from grader import __version__ as grader_version
from leaderboard.formatting import format_local, format_mse, format_score
from leaderboard.models import Challenge, Enrollment
from submissions.models import GradingRun, Submission
from submissions.standings import standing_refresh
from worker.celery import GRADE_SUBMISSION, app

if TYPE_CHECKING:
    from grader.errors import GradingError, PlatformError
    from grader.evaluate import Evaluation

logger = logging.getLogger(__name__)

QUOTA_WINDOW = timedelta(hours=24)
GAVE_UP_MESSAGE = (
    "Grading could not be completed because of a problem on our side; staff have been notified."
    " This upload does not count against your quota: please upload it again."
)


class SubmissionRefused(Exception):
    """An upload the challenge does not take now; ``code`` picks the API's status."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- uploading --------------------------------------------------------------------------------


def quota_used(enrollment: Enrollment, challenge: Challenge, now: datetime) -> int:
    """Uploads in the rolling 24 hours before ``now`` that count against the daily quota.

    A rolling window rather than the course's calendar day: nobody gains by waiting for
    midnight, and it reads the same in every timezone.
    """
    return Submission.objects.filter(
        enrollment=enrollment,
        challenge=challenge,
        counts_for_quota=True,
        created_at__gt=now - QUOTA_WINDOW,
    ).count()


def quota_next_slot(enrollment: Enrollment, challenge: Challenge, now: datetime) -> datetime:
    """When the oldest counting upload of the window drops out of it."""
    oldest = (
        Submission.objects.filter(
            enrollment=enrollment,
            challenge=challenge,
            counts_for_quota=True,
            created_at__gt=now - QUOTA_WINDOW,
        )
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return (oldest or now) + QUOTA_WINDOW


def submission_check_window(enrollment: Enrollment, challenge: Challenge, now: datetime) -> None:
    """Raise ``SubmissionRefused`` unless ``enrollment`` may upload to ``challenge`` at ``now``."""
    if enrollment.semester_id != challenge.semester_id:
        raise SubmissionRefused("not_enrolled", "You are not enrolled in this semester.")
    if challenge.semester.closed:
        raise SubmissionRefused(
            "closed", f"The {challenge.semester.title} semester is closed: uploads are over."
        )
    if challenge.deadline_passed(now):
        deadline = format_local(challenge.deadline, challenge.semester.course.tzinfo)
        raise SubmissionRefused("deadline", f"The deadline ({deadline}) has passed.")
    if quota_used(enrollment, challenge, now) >= challenge.daily_quota:
        next_slot = format_local(
            quota_next_slot(enrollment, challenge, now), challenge.semester.course.tzinfo
        )
        raise SubmissionRefused(
            "quota",
            f"You have used all {challenge.daily_quota} uploads of the last 24 hours for this"
            f" challenge; the next one is possible from {next_slot}.",
        )


def _digest(upload: File) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in upload.chunks():
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def submission_create(
    *,
    enrollment: Enrollment,
    challenge: Challenge,
    upload: File,
    fmt: str,
    now: datetime | None = None,
) -> Submission:
    """Store an upload that passed the form's checks, create it queued, queue it after commit."""
    now = now or timezone.now()
    with transaction.atomic():
        # Serialise uploads of one student so two at once cannot both take the last quota slot
        # (SQLite's IMMEDIATE transactions serialise all writers anyway).
        Enrollment.objects.select_for_update().filter(pk=enrollment.pk).exists()
        submission_check_window(enrollment, challenge, now)
        sha256, size = _digest(upload)
        submission = Submission(
            id=uuid.uuid4(),
            enrollment=enrollment,
            challenge=challenge,
            original_name=(upload.name or "")[-255:],
            sha256=sha256,
            size=size,
            format=fmt,
            created_at=now,
            queued_at=now,
        )
        submission.file.save("upload.bin", upload, save=False)
        try:
            submission.save(force_insert=True)
            submission_enqueue(submission)
        except BaseException:
            # The row is rolled back: the stored file would be an orphan nothing points at.
            submission.file.delete(save=False)
            raise
    logger.info(
        "submission %s: %s uploaded %s (%d bytes) to %s",
        submission.pk,
        enrollment.handle,
        fmt,
        size,
        challenge.slug,
    )
    return submission


# --- queueing ---------------------------------------------------------------------------------


def grading_time_limits(challenge: Challenge) -> tuple[int, int]:
    """Celery's soft and hard limits: the model's own wall clock plus the job's overhead."""
    soft = challenge.time_limit_seconds + settings.GRADER_TASK_OVERHEAD_SECONDS
    return soft, soft + 30


def _send(submission_id: str, soft: int, hard: int) -> None:
    # By name: the web process never imports worker.tasks (nor the grader runtime behind it).
    app.send_task(GRADE_SUBMISSION, args=[submission_id], soft_time_limit=soft, time_limit=hard)


def submission_enqueue(submission: Submission) -> None:
    """Ring the doorbell once the row is committed, so a worker always finds it.

    A broker that is down is only logged (``robust``): the row stays queued and the sweep sends
    it again later.
    """
    soft, hard = grading_time_limits(submission.challenge)
    transaction.on_commit(partial(_send, str(submission.pk), soft, hard), robust=True)


# --- the worker's side ------------------------------------------------------------------------


def submission_claim(submission_id: str) -> Submission | None:
    """Move a queued submission to running; None if it is not queued (a re-delivered message,
    another worker got it first, or it no longer exists)."""
    try:
        updated = Submission.objects.filter(
            pk=submission_id, status=Submission.Status.QUEUED
        ).update(
            status=Submission.Status.RUNNING,
            started_at=timezone.now(),
            finished_at=None,
            attempts=F("attempts") + 1,
        )
    except ValidationError:  # not a UUID
        return None
    if not updated:
        return None
    return Submission.objects.select_related("challenge__semester__course", "enrollment__user").get(
        pk=submission_id
    )


def grading_run_start(
    submission: Submission, *, worker_host: str, device: str, torch_version: str, runner: str
) -> GradingRun:
    return GradingRun.objects.create(
        submission=submission,
        attempt=submission.attempts,
        worker_host=worker_host[:200],
        device=device,
        torch_version=torch_version[:64],
        grader_version=grader_version,
        runner=runner,
    )


def submission_finish(submission: Submission, **fields: Any) -> bool:
    """Write the outcome if this attempt still holds the claim (the sweep may have re-queued it
    and another worker claimed it since)."""
    updated = Submission.objects.filter(
        pk=submission.pk, status=Submission.Status.RUNNING, attempts=submission.attempts
    ).update(**fields)
    if not updated:
        logger.warning(
            "submission %s: attempt %d no longer holds the claim; its outcome is dropped",
            submission.pk,
            submission.attempts,
        )
        return False
    for name, value in fields.items():
        setattr(submission, name, value)
    standing_refresh(submission.enrollment_id, submission.challenge_id)
    return True


def _keep_log(text: str) -> str:
    keep = settings.GRADER_LOG_KEEP_CHARS
    return text if len(text) <= keep else "[... truncated ...]\n" + text[-keep:]


def _close_run(run: GradingRun, outcome: str, **fields: Any) -> None:
    run.outcome = outcome
    run.finished_at = timezone.now()
    for name, value in fields.items():
        setattr(run, name, value)
    run.log = _keep_log(run.log)
    run.save()


def evaluation_outcome(
    challenge: Challenge, evaluation: Evaluation
) -> tuple[float | None, bool, dict[str, Any]]:
    """Score, pass flag and stored metrics of an evaluation under the challenge's own rules.

    The challenge decides which figure ranks (``score_key``: the pooled accuracy when it is so
    configured) and its threshold, so both are applied here rather than taken from the grader.
    """
    raw = evaluation.metrics.get(challenge.score_key)
    score = float(raw) if isinstance(raw, int | float) and not math.isnan(raw) else None
    passed = score is not None and score >= challenge.threshold
    metrics = evaluation.to_json()
    metrics["passed"] = passed
    return score, passed, metrics


def submission_record_result(
    submission: Submission, run: GradingRun, evaluation: Evaluation
) -> bool:
    """A graded model: score, pass/fail and metrics on the submission and its run."""
    score, passed, metrics = evaluation_outcome(submission.challenge, evaluation)
    with transaction.atomic():
        _close_run(
            run,
            GradingRun.Outcome.GRADED,
            score=score,
            metrics=metrics,
            dataset_hash=evaluation.dataset_hash,
            grader_version=evaluation.grader_version,
            runner=evaluation.runner,
            log=evaluation.log,
        )
        done = submission_finish(
            submission,
            status=Submission.Status.GRADED,
            score=score,
            passed=passed,
            metrics=metrics,
            error="",
            finished_at=timezone.now(),
        )
        if done:
            transaction.on_commit(partial(submission_notify, submission), robust=True)
    logger.info(
        "submission %s graded: %s=%s passed=%s (%.1f s)",
        submission.pk,
        submission.challenge.score_key,
        score,
        passed,
        evaluation.seconds,
    )
    return done


def submission_record_rejection(
    submission: Submission, run: GradingRun, error: GradingError
) -> bool:
    """The model's fault: final, the student reads ``error.message``."""
    with transaction.atomic():
        _close_run(
            run,
            GradingRun.Outcome.REJECTED,
            error_code=error.code[:64],
            error=error.message,
            log=error.detail,
        )
        done = submission_finish(
            submission,
            status=Submission.Status.FAILED,
            error=error.message,
            passed=None,
            score=None,
            finished_at=timezone.now(),
        )
        if done:
            transaction.on_commit(partial(submission_notify, submission), robust=True)
    logger.info("submission %s rejected: %s", submission.pk, error.code)
    return done


def submission_record_platform_error(
    submission: Submission, run: GradingRun, error: PlatformError, *, give_up: bool
) -> bool:
    """The host's fault: back to the queue for a retry, or failed without counting if no
    retries are left."""
    with transaction.atomic():
        _close_run(
            run,
            GradingRun.Outcome.PLATFORM_ERROR,
            error_code=error.code[:64],
            log="\n".join(filter(None, [error.message, error.detail, run.log])),
        )
        if give_up:
            done = submission_finish(
                submission,
                status=Submission.Status.FAILED,
                error=GAVE_UP_MESSAGE,
                counts_for_quota=False,
                finished_at=timezone.now(),
            )
            if done:
                transaction.on_commit(partial(submission_notify, submission), robust=True)
        else:
            done = submission_finish(
                submission,
                status=Submission.Status.QUEUED,
                started_at=None,
                queued_at=timezone.now(),
            )
    log = logger.error if give_up else logger.warning
    log(
        "submission %s: platform error %s (%s)%s",
        submission.pk,
        error.code,
        error.message,
        "; given up" if give_up else "; will retry",
    )
    return done


# --- telling the student ----------------------------------------------------------------------


def submission_summary(submission: Submission) -> str:
    """One line for emails and pages: "passed: score 123.45 (MSE 0.004051)"."""
    challenge = submission.challenge
    if submission.status == Submission.Status.FAILED:
        return f"failed: {submission.error}"
    if submission.status != Submission.Status.GRADED:
        return submission.get_status_display().lower()
    verdict = "passed" if submission.passed else "not passed"
    score = format_score(submission.score, challenge.kind.score_display)
    text = f"{verdict}: {challenge.score_key} {score}"
    if challenge.task == "keypoints":
        text += f" (MSE {format_mse(submission.mse)})"
    return text


def submission_notify(submission: Submission) -> None:
    user = submission.enrollment.user
    if not user.email:
        return
    url = settings.SITE_URL + reverse("submission_detail", args=[submission.pk])
    send_mail(
        subject=f"[{submission.challenge.title}] {submission_summary(submission)}"[:150],
        message=(
            f"Your upload to {submission.challenge.title} ({submission.challenge.semester})"
            f" finished grading.\n\n{submission_summary(submission)}\n\nDetails: {url}\n"
        ),
        from_email=None,
        recipient_list=[user.email],
    )
