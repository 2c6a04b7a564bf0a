"""Celery tasks. Thin: open the grading (claim), evaluate, record; then decide about a retry.

The runner (the sandbox, pre-warmed) is made once per worker process and reused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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
from submissions.claim import claim_next, run_device, submission_device
from submissions.doorbell import CHECK_REFERENCE, GRADE_SUBMISSION, REGRADE_ATTEMPT, SWEEP_STUCK
from submissions.models import GradingRun
from submissions.reference import reference_check_record
from submissions.regrade.attempts import attempt_record, attempt_takeover
from submissions.results import Grading, Worker, grading_record, grading_takeover, with_db_retry
from submissions.services import submission_enqueue
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


def message_time_limit(task: Task) -> int | None:
    """The longest model time limit the waking message's Celery limits cover (None: no
    limits, a task called directly)."""
    limits = task.request.timelimit
    if not limits or not limits[1]:
        return None
    return int(limits[1]) - int(settings.GRADER_TASK_OVERHEAD_SECONDS)


@app.task(bind=True, name=GRADE_SUBMISSION, max_retries=settings.GRADER_MAX_RETRIES)
def grade_submission(self: Task, submission_id: str) -> None:
    """A doorbell for ``submission_id``'s device: take over this upload's claim if its holder
    died (a re-delivered message), else claim the fairest waiting work of the device, which
    may be another student's upload or a re-grade attempt (``submissions.claim``)."""
    answer_doorbell(
        self, f"submission {submission_id}", grading_takeover, submission_device, submission_id
    )


@app.task(bind=True, name=REGRADE_ATTEMPT, max_retries=settings.GRADER_MAX_RETRIES)
def regrade_attempt(self: Task, run_id: int) -> None:
    """A doorbell for a re-grade attempt's device: like ``grade_submission`` (take over this
    attempt from a dead holder, else claim the fairest waiting work of the device)."""
    answer_doorbell(self, f"re-grade run {run_id}", attempt_takeover, run_device, run_id)


def answer_doorbell(
    task: Task,
    what: str,
    takeover: Callable[[Any, Worker], Grading | GradingRun | None],
    device_of: Callable[[Any], str | None],
    key: Any,
) -> None:
    """Both grading tasks: take over ``key``'s claim from a dead holder, else claim the
    fairest waiting work of ``key``'s device; then evaluate and record what was claimed."""
    worker = this_worker(task.request.hostname)
    work: Grading | GradingRun | None = with_db_retry(what, takeover, key, worker)
    if work is None:
        device = with_db_retry(what, device_of, key)
        if device is not None:
            work = with_db_retry(
                what, claim_next, device, worker, max_time_limit=message_time_limit(task)
            )
    grade_claimed(task, work, worker, woken_by=what)


def grade_claimed(
    task: Task, work: Grading | GradingRun | None, worker: Worker, *, woken_by: str
) -> None:
    """Evaluate and record what this message claimed; a platform error goes back to the
    queue with a backoff unless this was its last try."""
    if work is None:
        logger.info("%s: nothing to claim (already taken or done)", woken_by)
        return
    if isinstance(work, GradingRun):
        _regrade(task, work, worker)
    else:
        _grade(task, work, worker)


def _grade(task: Task, grading: Grading, worker: Worker) -> None:
    submission = grading.submission
    what = f"submission {submission.pk}"
    with heartbeat.job(what):
        outcome = evaluate_submission(submission, worker)
    # Counted on the upload, not on the message: any message may claim it.
    last_try = submission.attempts > (task.max_retries or 0)
    recorded = with_db_retry(what, grading_record, grading, outcome, last_try=last_try)
    # An attempt closed without it (the sweep re-queued the work) has nothing left to retry.
    if recorded and isinstance(outcome.error, PlatformError) and not last_try:
        countdown = retry_countdown(submission.attempts - 1)
        if task.request.retries < (task.max_retries or 0):
            raise task.retry(exc=outcome.error, countdown=countdown)
        # This message has used its retries on other uploads: ring anew for this one.
        submission_enqueue(submission, countdown=countdown)


def _regrade(task: Task, run: GradingRun, worker: Worker) -> None:
    """One attempt of a re-grade batch: the outcome stays on the run until the whole batch is
    published."""
    what = f"re-grade run {run.pk}"
    with heartbeat.job(what):
        outcome = evaluate_submission(run.submission, worker, pictures=False)
    last_try = task.request.retries >= (task.max_retries or 0)
    recorded = with_db_retry(what, attempt_record, run, outcome, last_try=last_try)
    if recorded and isinstance(outcome.error, PlatformError) and not last_try:
        raise task.retry(exc=outcome.error, countdown=retry_countdown(task.request.retries))


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
