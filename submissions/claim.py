"""The fair claim: a worker woken by any grading message takes the fairest waiting work.

The broker only rings; which upload (or re-grade attempt) a free worker grades is decided here,
from the database, in the order ``submissions.queue`` defines. So prefetched messages, a
re-delivered message or one the sweep sent again never reorder the queue: every message still
claims at most one piece of work, and every piece of queued work has a message of its own on
the way, so none waits without a worker being woken for it.

On PostgreSQL the claims of one device are taken one at a time (a transaction-scoped advisory
lock, held for the few milliseconds of the choice and the conditional update, so two workers
never both see a student with nothing running), and the chosen row is locked with
``SELECT … FOR UPDATE SKIP LOCKED``, so a row another transaction holds (a sweep re-sending it)
is passed over rather than waited for. On SQLite every write transaction is ``IMMEDIATE``
(``config.settings``): the choice and the claim run alone. Either way the claim is the same
conditional update as before (``lifecycle.claim``, ``lifecycle.run_claim``): exactly once.
"""

from __future__ import annotations

import logging
import zlib
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from submissions.models import GradingRun, Submission
from submissions.queue import fair_uploads, regrade_turn, waiting_regrades
from submissions.regrade.attempts import attempt_open
from submissions.results import Grading, Worker, grading_open

logger = logging.getLogger(__name__)


def _serialise_claims(device: str) -> None:
    """One claim of ``device`` at a time, until this transaction ends (PostgreSQL)."""
    if connection.vendor == "postgresql":
        key = zlib.crc32(f"grader-claim:{device}".encode())
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def claim_next(
    device: str,
    worker: Worker,
    *,
    max_time_limit: int | None = None,
    now: datetime | None = None,
) -> Grading | GradingRun | None:
    """Claim the fairest waiting work of ``device``: an upload (its ``Grading``) or a re-grade
    attempt (its run); None when nothing waits. ``max_time_limit`` leaves out challenges whose
    model time limit the waking message's Celery limits would not cover."""
    now = now or timezone.now()
    with transaction.atomic():
        _serialise_claims(device)
        uploads = fair_uploads(device, now)
        regrades = waiting_regrades(device)
        if max_time_limit is not None:
            uploads = uploads.filter(challenge__time_limit_seconds__lte=max_time_limit)
            regrades = regrades.filter(
                submission__challenge__time_limit_seconds__lte=max_time_limit
            )
        upload = (
            uploads.select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)
            .first()
        )
        regrade = None
        if upload is None or regrade_turn(device, now):
            regrade = (
                regrades.select_for_update(skip_locked=True, of=("self",))
                .values_list("pk", flat=True)
                .first()
            )
        if regrade is not None:
            run = attempt_open(regrade, worker)
            if run is not None:
                return run
        if upload is None:
            return None
        grading = grading_open(upload, worker)
        if grading is None:  # unreachable while the row is locked; the claim is conditional
            logger.warning("submission %s: chosen but not claimable", upload)
        return grading


def submission_device(submission_id: Any) -> str | None:
    """The device queue a grading message for this submission came through (None: no such
    submission)."""
    try:
        return (
            Submission.objects.filter(pk=submission_id)
            .values_list("challenge__device", flat=True)
            .first()
        )
    except ValidationError:  # not a UUID
        return None


def run_device(run_id: Any) -> str | None:
    """The device queue a re-grade message for this attempt came through."""
    try:
        return (
            GradingRun.objects.filter(pk=run_id)
            .values_list("submission__challenge__device", flat=True)
            .first()
        )
    except (ValidationError, ValueError, TypeError):
        return None
