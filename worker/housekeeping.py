"""Housekeeping that never waits behind grading: beat runs the sweep itself.

The sweep (re-send what lost its message, re-queue what a dead worker held, open and close the
queue-age and no-worker alerts) matters most during a backlog, which is exactly when a sweep
sent as a task would sit behind the gradings in the queue (and expire there: a deadline-night
rush once left ten minutes without one). So beat, the one process every site runs once, runs
it in a thread of its own every ``GRADER_SWEEP_EVERY_SECONDS``, whatever the queues hold. Every
change the sweep makes is a conditional update, so a sweep a worker asks for on connecting to
the broker (``worker.SweepOnConnect``) may run beside it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery.signals import beat_init
from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)


def sweep_forever(every: float, stop: threading.Event) -> None:
    """Sweep now, then every ``every`` seconds until ``stop``; a failed sweep (the database
    restarting) is logged and the next one tries again."""
    # Imported here: ``celery -A worker`` loads this module before Django's apps are ready.
    from submissions.sweep import submissions_sweep

    while True:
        close_old_connections()
        began = time.monotonic()
        try:
            report = submissions_sweep()
        except Exception:
            logger.exception("the sweep failed; the next one runs in %.0f s", every)
        else:
            # One line per sweep: the log shows that housekeeping runs, and how long a sweep
            # takes, during a backlog (benchmarks.bench_rush reads it).
            logger.info("sweep: %s in %.0f ms", report.summary(), 1000 * (time.monotonic() - began))
        finally:
            close_old_connections()
        if stop.wait(every):
            return


#: set to end the sweeping thread (tests)
stopped = threading.Event()


@beat_init.connect
def _start_sweeping(**_: Any) -> None:
    every = float(settings.GRADER_SWEEP_EVERY_SECONDS)
    threading.Thread(target=sweep_forever, args=(every, stopped), name="sweep", daemon=True).start()
    logger.info("beat sweeps every %.0f s, beside the queues", every)
