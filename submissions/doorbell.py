"""The doorbell: the broker only tells a worker that there is work; the database says what.

Messages are sent by task name through ``celery.current_app`` (the project's app,
``config.celery``), so nothing here imports the worker or the grader's runtime. They are sent
after the transaction that created the work commits, so a worker always finds the row; a send
that fails is logged and left to the sweep, which sends again (claims are conditional, so an
early second message is harmless).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

#: task names, shared with ``worker.tasks``
GRADE_SUBMISSION = "worker.tasks.grade_submission"
REGRADE_ATTEMPT = "worker.tasks.regrade_attempt"
SWEEP_STUCK = "worker.tasks.sweep_stuck"
CHECK_REFERENCE = "worker.tasks.check_reference"


def queue_for(device: str) -> str:
    """The queue of the workers that serve ``device`` (``cpu`` or ``gpu``, a challenge's)."""
    return f"{settings.GRADER_QUEUE_PREFIX}{device}"


def ring(
    task: str,
    arg: Any,
    *,
    soft: int,
    hard: int,
    device: str = "cpu",
    countdown: float | None = None,
) -> None:
    """Send one message now to the device's queue, with the job's Celery time limits (to be
    delivered after ``countdown`` seconds, if given)."""
    options: dict[str, Any] = {"countdown": countdown} if countdown else {}
    current_app.send_task(
        task, args=[arg], soft_time_limit=soft, time_limit=hard, queue=queue_for(device), **options
    )


def ring_after_commit(
    task: str,
    arg: Any,
    *,
    soft: int,
    hard: int,
    device: str = "cpu",
    countdown: float | None = None,
    on_failure: Callable[[], Any] | None = None,
) -> None:
    """Send one message once the current transaction commits; a failure is logged, and
    ``on_failure`` marks the work for the next sweep to send again at once."""
    after_commit(
        ring,
        task,
        arg,
        soft=soft,
        hard=hard,
        device=device,
        countdown=countdown,
        what=f"sending {task}({arg!r})",
        on_failure=on_failure,
    )


def after_commit(
    fn: Callable[..., Any],
    *args: Any,
    what: str,
    on_failure: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> None:
    """Call ``fn`` once the current transaction commits (at once outside one).

    Whatever it raises is logged and swallowed: the transaction has committed, and what it
    recorded must stand (a broker or mail server that is down loses a doorbell or an email,
    which the sweep or nobody needs, never a stored upload or grade). Each hook catches its own
    failure, so one failed send never keeps the hooks after it (the rest of a batch) from
    running, and Django's own handling of failing hooks is never reached.
    """

    def run() -> None:
        try:
            fn(*args, **kwargs)
        except Exception:
            logger.exception("after commit: %s failed", what)
            if on_failure is not None:
                try:
                    on_failure()
                except Exception:
                    logger.exception("after commit: marking %s for the sweep failed", what)

    transaction.on_commit(run)
