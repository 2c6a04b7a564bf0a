"""Celery tasks. Thin: open the grading (claim), evaluate, record; then decide about a retry.

The runner (the sandbox, pre-warmed) is made once per worker process and reused.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from celery.signals import worker_process_init
from django.conf import settings

from config.celery import app
from courses.models import Challenge
from grader.errors import PlatformError
from submissions.doorbell import CHECK_REFERENCE, GRADE_SUBMISSION, REGRADE_ATTEMPT, SWEEP_STUCK
from submissions.reference import reference_check_record
from submissions.regrade.attempts import attempt_open, attempt_record
from submissions.results import grading_open, grading_record
from submissions.sweep import submissions_sweep
from worker.grading import evaluate_reference, evaluate_submission, get_runner, this_worker

logger = logging.getLogger(__name__)


@worker_process_init.connect
def _start_runner(**_: Any) -> None:
    # Warm the sandbox before the first job rather than during it.
    try:
        runner = get_runner()
    except PlatformError as exc:
        logger.error("this worker cannot grade: %s (%s)", exc.message, exc.detail)
        return
    logger.info("worker ready: runner %s on %s", runner.name, settings.GRADER_DEVICE)


def retry_countdown(retries: int) -> int:
    return int(settings.GRADER_RETRY_BACKOFF_SECONDS * 2**retries)


@app.task(bind=True, name=GRADE_SUBMISSION, max_retries=settings.GRADER_MAX_RETRIES)
def grade_submission(self: Task, submission_id: str) -> None:
    worker = this_worker(self.request.hostname)
    grading = grading_open(submission_id, worker)
    if grading is None:
        logger.info("submission %s: nothing to claim (already taken or done)", submission_id)
        return
    outcome = evaluate_submission(grading.submission, worker)
    last_try = self.request.retries >= (self.max_retries or 0)
    grading_record(grading, outcome, last_try=last_try)
    if isinstance(outcome.error, PlatformError) and not last_try:
        raise self.retry(exc=outcome.error, countdown=retry_countdown(self.request.retries))


@app.task(bind=True, name=REGRADE_ATTEMPT, max_retries=settings.GRADER_MAX_RETRIES)
def regrade_attempt(self: Task, run_id: int) -> None:
    """One attempt of a re-grade batch: like ``grade_submission``, but the outcome stays on the
    run until the whole batch is published."""
    worker = this_worker(self.request.hostname)
    run = attempt_open(run_id, worker)
    if run is None:
        logger.info("re-grade run %s: nothing to claim (already taken or done)", run_id)
        return
    outcome = evaluate_submission(run.submission, worker, pictures=False)
    last_try = self.request.retries >= (self.max_retries or 0)
    attempt_record(run, outcome, last_try=last_try)
    if isinstance(outcome.error, PlatformError) and not last_try:
        raise self.retry(exc=outcome.error, countdown=retry_countdown(self.request.retries))


@app.task(bind=True, name=CHECK_REFERENCE)
def check_reference(self: Task, challenge_id: int) -> None:
    """Grade a challenge's reference model on its hidden data and record how it went on the
    challenge. Not retried: staff press the button again after fixing what the error says."""
    challenge = Challenge.objects.select_related("semester").filter(pk=challenge_id).first()
    if challenge is None or not challenge.reference_model:
        logger.info("challenge %s: no reference model to check", challenge_id)
        return
    reference_check_record(
        challenge, evaluate_reference(challenge, this_worker(self.request.hostname))
    )


@app.task(name=SWEEP_STUCK)
def sweep_stuck() -> dict[str, list[Any]]:
    report = submissions_sweep()
    return {
        "resent": report.resent,
        "requeued": report.requeued,
        "given_up": report.given_up,
        "regrade_resent": report.runs.resent,
        "regrade_requeued": report.runs.requeued,
        "regrade_lost": report.runs.lost,
    }
