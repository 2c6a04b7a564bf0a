"""A re-grade attempt from the worker's side: claim it, record how it went.

Like a grading (``submissions.results``), but the outcome stays on the attempt's run until the
whole batch is published; the last attempt to end completes the batch.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from grader.errors import GradingError, PlatformError
from submissions import heartbeats, lifecycle
from submissions.models import GradingRun
from submissions.regrade.batches import regrade_batch_complete
from submissions.results import GradingOutcome, Worker, evaluation_outcome, keep_log

logger = logging.getLogger(__name__)


def attempt_open(run_id: int, worker: Worker) -> GradingRun | None:
    """Claim a queued re-grade attempt and note who grades it; None if nothing to claim."""
    run = lifecycle.run_claim(run_id, worker_name=worker.name)
    if run is None:
        run = _takeover(run_id, worker)
    if run is None:
        return None
    run.worker_host, run.device = worker.host[:200], worker.device
    run.torch_version = worker.torch_version[:64]
    GradingRun.objects.filter(pk=run.pk).update(
        worker_host=run.worker_host, device=run.device, torch_version=run.torch_version
    )
    logger.info("re-grade %s: submission %s on %s", run.batch_id, run.submission_id, worker.host)
    return run


def _takeover(run_id: int, worker: Worker) -> GradingRun | None:
    """A re-delivered message for an attempt whose holder is dead (killed with its message
    unacknowledged) takes it over instead of being dropped."""
    run = GradingRun.objects.filter(
        pk=run_id, batch__isnull=False, outcome=GradingRun.Outcome.RUNNING
    ).first()
    if run is None or not heartbeats.run_holder_dead(run):
        return None
    taken = lifecycle.run_takeover(run_id, run.worker_name, worker_name=worker.name)
    if taken is not None:
        logger.warning("re-grade run %s: taken over from dead worker %s", run_id, run.worker_name)
    return taken


def attempt_close(run: GradingRun, outcome: str, **fields: Any) -> None:
    """End a running attempt (or put it back in the queue) and let the batch complete."""
    assert run.batch_id is not None
    if "log" in fields:
        fields["log"] = keep_log(fields["log"])
    with transaction.atomic():
        if outcome == GradingRun.Outcome.QUEUED:
            lifecycle.run_requeue(run, **fields)
            return
        lifecycle.run_close(run, outcome, **fields)
        regrade_batch_complete(run.batch_id)


def attempt_record(run: GradingRun, outcome: GradingOutcome, *, last_try: bool) -> None:
    """Record an attempt's outcome on its run only; the submission keeps its result until the
    batch is published. A platform error goes back to the queue unless this was the last try."""
    known = {"runner": outcome.runner[:32], "dataset_hash": outcome.dataset_hash}
    error = outcome.error
    if isinstance(error, GradingError):
        attempt_close(
            run,
            GradingRun.Outcome.REJECTED,
            error_code=error.code[:64],
            error=error.message,
            log=error.detail,
            **known,
        )
    elif outcome.evaluation is None or error is not None:
        if not isinstance(error, PlatformError):
            error = PlatformError("internal", "no result and no error from grading")
        log = "\n".join(filter(None, [error.message, error.detail]))
        ended = GradingRun.Outcome.PLATFORM_ERROR if last_try else GradingRun.Outcome.QUEUED
        attempt_close(run, ended, error_code=error.code[:64], log=log, **known)
    else:
        evaluation = outcome.evaluation
        score, passed, metrics = evaluation_outcome(evaluation)
        attempt_close(
            run,
            GradingRun.Outcome.GRADED,
            score=score,
            passed=passed,
            metrics=metrics,
            grader_version=evaluation.grader_version,
            log=evaluation.log,
            **known,
        )
