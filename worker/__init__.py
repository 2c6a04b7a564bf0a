"""Celery workers: the grading and re-grade tasks, the sweep (which beat runs itself,
``worker.housekeeping``), and the demo's process runner.

``celery -A worker worker`` finds the project's Celery app here (it lives in ``config.celery``).
"""

import logging
from datetime import UTC, datetime

from celery import bootsteps
from django.conf import settings

from config.celery import app
from submissions.doorbell import SWEEP_STUCK
from worker import (
    housekeeping,  # beat's sweep starts with beat
    priority,  # noqa: F401  (before worker.tasks starts the sandbox)
)


class SweepOnConnect(bootsteps.StartStopStep):
    """Ask for a sweep whenever this worker (re)connects to the broker: work queued while no
    worker was up, or whose message a broker restart lost, is sent again at once instead of
    after ``GRADER_STUCK_QUEUED_SECONDS`` (claims are conditional: an early re-send is
    harmless). The consumer's steps start again after every reconnection."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, parent: object) -> None:
        # Everything queued before this connection may have lost its message (a broker that
        # restarted without persistence): the sweep sends all of it again, not only the stale.
        connected = datetime.now(UTC).isoformat()
        try:
            app.send_task(
                SWEEP_STUCK,
                kwargs={"queued_before": connected},
                expires=60.0,
                queue=settings.HOUSEKEEPING_QUEUE,
            )
        except Exception:  # the broker went away again: the next connection asks again
            logging.getLogger(__name__).warning("could not ask for a sweep", exc_info=True)


app.steps["consumer"].add(SweepOnConnect)
app.steps["worker"].add(housekeeping.HousekeepingConsumer)

__all__ = ["app"]
