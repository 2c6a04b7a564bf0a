"""Celery tasks. Thin: claim, call ``worker.grading``, decide about retries.

The runner (the sandbox, pre-warmed) is made once per worker process and reused.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from celery.signals import worker_process_init
from django.conf import settings

from grader.errors import PlatformError
from grader.runner import Runner
from grader.runners import make_runner
from grader.sandbox.job import MIN_JOB_UID
from submissions.regrade import regrade_run_claim
from submissions.services import submission_claim
from submissions.sweep import submissions_sweep
from worker.celery import GRADE_SUBMISSION, REGRADE_ATTEMPT, SWEEP_STUCK, app
from worker.grading import WorkerInfo, grade_claimed, regrade_claimed

logger = logging.getLogger(__name__)

_runners: dict[bool, Runner] = {}


def get_runner() -> Runner:
    """This process's runner: the sandbox unless ``GRADER_SANDBOX`` is off (DEBUG only).

    Fails closed: a host that cannot sandbox raises ``PlatformError`` for every job, which is
    recorded and retried (perhaps by another worker), and never grades unsandboxed.
    """
    sandboxed = bool(settings.GRADER_SANDBOX)
    if sandboxed not in _runners:
        try:
            _runners[sandboxed] = make_runner(sandboxed=sandboxed, uid=sandbox_uid())
        except ImportError as exc:
            raise PlatformError(
                "sandbox_unavailable", "this worker cannot start the sandbox", str(exc)
            ) from exc
    return _runners[sandboxed]


@worker_process_init.connect
def _start_runner(**_: Any) -> None:
    # Warm the sandbox before the first job rather than during it.
    try:
        runner = get_runner()
    except PlatformError as exc:
        logger.error("this worker cannot grade: %s (%s)", exc.message, exc.detail)
        return
    logger.info("worker ready: runner %s on %s", runner.name, settings.GRADER_DEVICE)


def sandbox_uid() -> int:
    """This process's job uid: ``GRADER_SANDBOX_UID`` less its index in the worker's pool, so
    two pool processes never share the kernel's per-uid process budget."""
    from billiard.process import current_process

    index = getattr(current_process(), "index", None) or 0
    uid = int(settings.GRADER_SANDBOX_UID) - int(index)
    if uid < MIN_JOB_UID:
        raise PlatformError(
            "sandbox_unavailable",
            "this worker cannot start the sandbox",
            f"GRADER_SANDBOX_UID={settings.GRADER_SANDBOX_UID} leaves pool process {index}"
            f" the uid {uid}, below {MIN_JOB_UID}",
        )
    return uid


def retry_countdown(retries: int) -> int:
    return int(settings.GRADER_RETRY_BACKOFF_SECONDS * 2**retries)


@app.task(bind=True, name=GRADE_SUBMISSION, max_retries=settings.GRADER_MAX_RETRIES)
def grade_submission(self: Task, submission_id: str) -> None:
    submission = submission_claim(submission_id)
    if submission is None:
        logger.info("submission %s: nothing to claim (already taken or done)", submission_id)
        return
    last_try = self.request.retries >= (self.max_retries or 0)
    try:
        grade_claimed(
            submission, get_runner, WorkerInfo.current(self.request.hostname), last_try=last_try
        )
    except PlatformError as exc:
        if last_try:
            return
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries)) from exc


@app.task(bind=True, name=REGRADE_ATTEMPT, max_retries=settings.GRADER_MAX_RETRIES)
def regrade_attempt(self: Task, run_id: int) -> None:
    """One attempt of a re-grade batch: like ``grade_submission``, but the outcome stays on the
    run until the whole batch is published."""
    run = regrade_run_claim(run_id)
    if run is None:
        logger.info("re-grade run %s: nothing to claim (already taken or done)", run_id)
        return
    last_try = self.request.retries >= (self.max_retries or 0)
    try:
        regrade_claimed(
            run, get_runner, WorkerInfo.current(self.request.hostname), last_try=last_try
        )
    except PlatformError as exc:
        if last_try:
            return
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries)) from exc


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
