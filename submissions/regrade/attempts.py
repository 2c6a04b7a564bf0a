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
from submissions.results import (
    GradingOutcome,
    RunEnd,
    Worker,
    keep_log,
    run_note_late,
)

logger = logging.getLogger(__name__)


def attempt_open(run_id: int, worker: Worker) -> GradingRun | None:
    """Claim a queued re-grade attempt and note who grades it; None if nothing to claim."""
    run = lifecycle.run_claim(run_id, worker_name=worker.name)
    if run is None:
        run = _takeover(run_id, worker)
    if run is None:
        return None
    _note_worker(run, worker)
    logger.info("re-grade %s: submission %s on %s", run.batch_id, run.submission_id, worker.host)
    return run


def attempt_takeover(run_id: int, worker: Worker) -> GradingRun | None:
    """Take over a running attempt whose holder is dead (a re-delivered message) and note who
    grades it; None unless it runs with a dead holder."""
    run = _takeover(run_id, worker)
    if run is not None:
        _note_worker(run, worker)
    return run


def _note_worker(run: GradingRun, worker: Worker) -> None:
    run.worker_host, run.device = worker.host[:200], worker.device
    run.torch_version = worker.torch_version[:64]
    GradingRun.objects.filter(pk=run.pk).update(
        worker_host=run.worker_host, device=run.device, torch_version=run.torch_version
    )


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


def attempt_close(run: GradingRun, outcome: str, **fields: Any) -> bool:
    """End a running attempt (or put it back in the queue) and let the batch complete; False
    if ``run.attempt`` no longer runs (recorded lost, re-queued or taken over meanwhile)."""
    assert run.batch_id is not None
    if "log" in fields:
        fields["log"] = keep_log(fields["log"])
    with transaction.atomic():
        if outcome == GradingRun.Outcome.QUEUED:
            return lifecycle.run_requeue(run, **fields)
        closed = lifecycle.run_close(run, outcome, **fields)
        if closed:
            regrade_batch_complete(run.batch_id)
    return closed


def attempt_record(run: GradingRun, outcome: GradingOutcome, *, last_try: bool) -> bool:
    """Record an attempt's outcome on its run only; the submission keeps its result until the
    batch is published. A platform error goes back to the queue unless this was the last try.

    A worker that finishes after its attempt was closed without it (the sweep recorded it lost
    or re-queued it for another worker, a re-delivered message took it over) changes nothing:
    what it found goes to the run's staff log only. Returns whether the run took the outcome.
    """
    known = {"runner": outcome.runner[:32], "dataset_hash": outcome.dataset_hash}
    error = outcome.error
    if isinstance(error, GradingError):
        end = RunEnd(
            GradingRun.Outcome.REJECTED,
            {"error_code": error.code[:64], "error": error.message, "log": error.detail},
        )
    elif outcome.evaluation is None or error is not None:
        if not isinstance(error, PlatformError):
            error = PlatformError("internal", "no result and no error from grading")
        log = "\n".join(filter(None, [error.message, error.detail]))
        end = RunEnd(GradingRun.Outcome.PLATFORM_ERROR, {"error_code": error.code[:64], "log": log})
    else:
        end = RunEnd.graded(outcome.evaluation)
    # A platform error before the last try goes back to the queue for the task's retry.
    retry = end.outcome == GradingRun.Outcome.PLATFORM_ERROR and not last_try
    written = GradingRun.Outcome.QUEUED if retry else end.outcome
    if attempt_close(run, written, **known, **end.fields):
        return True
    if not run_note_late(run, end, written=written):
        return True  # an earlier try of this write committed it (``with_db_retry``)
    logger.warning(
        "re-grade run %s: attempt %d no longer runs; its outcome is only noted in its log",
        run.pk,
        run.attempt,
    )
    return False
