"""Celery tasks. Thin: open the grading (claim), evaluate, record; then decide about a retry.

The runner (the sandbox, pre-warmed) is made once per worker process and reused.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import Task
from celery.signals import (
    celeryd_after_setup,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
)
from django.conf import settings
from django.core.mail import EmailMessage

from config.celery import app
from courses.models import Challenge
from grader.errors import PlatformError
from submissions.doorbell import CHECK_REFERENCE, GRADE_SUBMISSION, REGRADE_ATTEMPT, SWEEP_STUCK
from submissions.reference import reference_check_record
from submissions.regrade.attempts import attempt_open, attempt_record
from submissions.results import grading_open, grading_record, with_db_retry
from submissions.storage import storage_problem
from submissions.sweep import submissions_sweep
from worker import heartbeat
from worker.grading import evaluate_reference, evaluate_submission, get_runner, this_worker

logger = logging.getLogger(__name__)

#: sent by name by ``accounts.mail`` (its SEND_EMAIL), which builds the messages
SEND_EMAIL = "worker.tasks.send_email"
#: a mail server that refuses is tried again after 1, 2 and 4 minutes, then the email is lost
EMAIL_RETRIES = 3
EMAIL_RETRY_SECONDS = 60


@worker_init.connect
def _check_store(**_: Any) -> None:
    # A worker that cannot read uploads would fail every job after its retries: refuse to start
    # instead, saying why (SystemExit passes through Celery's signal dispatch; others do not).
    problem = storage_problem()
    if problem is not None:
        logger.critical("this worker cannot start: %s", problem)
        raise SystemExit(f"worker start-up: MEDIA_STORAGE=s3: {problem}")


@celeryd_after_setup.connect
def _remember_node(sender: str, **_: Any) -> None:
    # The node name, for the heartbeats of the pool processes forked after this.
    heartbeat.node["name"] = str(sender)
    # Pool processes of this node's previous life (killed, restarted) are dead now: their
    # work moves on at the next sweep instead of after GRADER_WORKER_DEAD_SECONDS.
    try:
        heartbeat.forget_previous_life(str(sender))
    except Exception:
        logger.warning("could not retire the old heartbeats of %s", sender, exc_info=True)


@worker_process_init.connect
def _start_runner(**_: Any) -> None:
    # Warm the sandbox before the first job rather than during it.
    try:
        runner = get_runner()
    except PlatformError as exc:
        logger.error("this worker cannot grade: %s (%s)", exc.message, exc.detail)
        return
    # Beat only once this process can grade: a worker without a sandbox is not "up".
    heartbeat.start(heartbeat.node["name"] or this_worker().host, runner.name)
    logger.info("worker ready: runner %s on %s", runner.name, settings.GRADER_DEVICE)


@worker_process_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    heartbeat.stop()


def retry_countdown(retries: int) -> int:
    return int(settings.GRADER_RETRY_BACKOFF_SECONDS * 2**retries)


@app.task(bind=True, name=GRADE_SUBMISSION, max_retries=settings.GRADER_MAX_RETRIES)
def grade_submission(self: Task, submission_id: str) -> None:
    worker = this_worker(self.request.hostname)
    what = f"submission {submission_id}"
    grading = with_db_retry(what, grading_open, submission_id, worker)
    if grading is None:
        logger.info("submission %s: nothing to claim (already taken or done)", submission_id)
        return
    with heartbeat.job(what):
        outcome = evaluate_submission(grading.submission, worker)
    last_try = self.request.retries >= (self.max_retries or 0)
    recorded = with_db_retry(what, grading_record, grading, outcome, last_try=last_try)
    # An attempt closed without it (the sweep re-queued the work) has nothing left to retry.
    if recorded and isinstance(outcome.error, PlatformError) and not last_try:
        raise self.retry(exc=outcome.error, countdown=retry_countdown(self.request.retries))


@app.task(bind=True, name=REGRADE_ATTEMPT, max_retries=settings.GRADER_MAX_RETRIES)
def regrade_attempt(self: Task, run_id: int) -> None:
    """One attempt of a re-grade batch: like ``grade_submission``, but the outcome stays on the
    run until the whole batch is published."""
    worker = this_worker(self.request.hostname)
    what = f"re-grade run {run_id}"
    run = with_db_retry(what, attempt_open, run_id, worker)
    if run is None:
        logger.info("re-grade run %s: nothing to claim (already taken or done)", run_id)
        return
    with heartbeat.job(what):
        outcome = evaluate_submission(run.submission, worker, pictures=False)
    last_try = self.request.retries >= (self.max_retries or 0)
    recorded = with_db_retry(what, attempt_record, run, outcome, last_try=last_try)
    if recorded and isinstance(outcome.error, PlatformError) and not last_try:
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
def sweep_stuck(queued_before: str | None = None) -> dict[str, list[Any]]:
    """The periodic sweep; ``queued_before`` (ISO 8601) when a worker asks on connecting."""
    before = datetime.fromisoformat(queued_before) if queued_before else None
    report = submissions_sweep(queued_before=before)
    return {
        "resent": report.resent,
        "requeued": report.requeued,
        "given_up": report.given_up,
        "regrade_resent": report.runs.resent,
        "regrade_requeued": report.runs.requeued,
        "regrade_lost": report.runs.lost,
    }


@app.task(bind=True, name=SEND_EMAIL, max_retries=EMAIL_RETRIES)
def send_email(self: Task, email: dict[str, Any]) -> None:
    """Send one plain-text email a page built (``accounts.mail.Email``: a password reset)."""
    message = EmailMessage(
        subject=email["subject"],
        body=email["body"],
        from_email=email.get("from_email"),
        to=email["to"],
    )
    try:
        message.send()
    except OSError as exc:  # smtplib's errors and a refused connection alike
        if self.request.retries >= EMAIL_RETRIES:
            logger.error("email %r to %s lost: %s", email["subject"], email["to"], exc)
            return
        raise self.retry(exc=exc, countdown=EMAIL_RETRY_SECONDS * 2**self.request.retries) from exc
