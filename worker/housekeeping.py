"""Housekeeping that never waits behind grading: beat runs the sweep itself, and every worker
serves the housekeeping queue in a thread beside its pool (``HousekeepingConsumer``).

The sweep (re-send what lost its message, re-queue what a dead worker held, open and close the
queue-age and no-worker alerts) matters most during a backlog, which is exactly when a sweep
sent as a task would sit behind the gradings in the queue (and expire there: a deadline-night
rush once left ten minutes without one). So beat, the one process every site runs once, runs
it in a thread of its own every ``GRADER_SWEEP_EVERY_SECONDS``, whatever the queues hold. Every
change the sweep makes is a conditional update, so a sweep a worker asks for on connecting to
the broker (``worker.SweepOnConnect``) may run beside it.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from celery import bootsteps
from celery.signals import beat_init, celeryd_after_setup
from django.conf import settings
from django.db import close_old_connections
from kombu import Queue

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


# --- the housekeeping queue, served beside the gradings -----------------------------------------

#: how long the consumer waits for a message before it looks at its stop flag again
POLL_SECONDS = 1.0


def eta_in(headers: dict[str, Any], now: datetime | None = None) -> float:
    """Seconds until a message's ``eta`` (a retry's countdown), 0 when it has none or is due."""
    eta = headers.get("eta")
    if not eta:
        return 0.0
    try:
        due = datetime.fromisoformat(str(eta))
    except ValueError:
        return 0.0
    if due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    return max(0.0, (due - (now or datetime.now(UTC))).total_seconds())


def serve_housekeeping(app: Any, queue: Any, hostname: str, stop: threading.Event) -> None:
    """Consume ``queue`` (``settings.HOUSEKEEPING_QUEUE``) until ``stop``, running each task in
    this thread as a pool process would: Celery's own tracer runs it, so a task's retry sends
    a message with its countdown back to the same queue. A message with a countdown still to
    run (``eta``) is held, unacknowledged, until it is due, as Celery's own consumer holds one,
    and the prefetch grows by one for each held, so the messages behind it still run; every
    other message is run at once and acknowledged after it ran. A broker that goes away is
    reconnected to after a pause (held messages are delivered again by the broker)."""
    from celery.app.trace import build_tracer

    tracers: dict[str, Any] = {}
    #: (due, order, body, message) of the messages waiting for their countdown
    held: list[tuple[float, int, Any, Any]] = []
    order = itertools.count()

    def run(body: Any, message: Any) -> None:
        headers = message.headers or {}
        name = headers.get("task", "")
        task = app.tasks.get(name)
        try:
            if task is None:
                logger.error("housekeeping: no task %r here; message dropped", name)
                return
            args, kwargs, _embed = body
            tracer = tracers.get(name)
            if tracer is None:
                tracer = tracers[name] = build_tracer(name, task, app=app, hostname=hostname)
            request = {
                "id": headers.get("id"),
                "task": name,
                "retries": headers.get("retries") or 0,
                "hostname": hostname,
                "is_eager": False,
                "timelimit": headers.get("timelimit"),
                "delivery_info": {"exchange": "", "routing_key": queue.name},
                # Not the message's headers: a retry would copy them (its old retry count, no
                # countdown) over the ones it sets, as a worker's request keeps only custom ones.
                "headers": {},
            }
            close_old_connections()
            tracer(str(headers.get("id") or ""), args, kwargs, request)
        except Exception:
            logger.exception("housekeeping: task %s failed", name)
        finally:
            close_old_connections()
            message.ack()

    while not stop.is_set():
        held.clear()
        try:
            with (
                app.connection_for_read() as conn,
                conn.Consumer([queue], accept=["json"]) as consumer,
            ):

                def handle(body: Any, message: Any) -> None:
                    wait = eta_in(message.headers or {})
                    if not wait:
                        run(body, message)
                        return
                    heapq.heappush(held, (time.monotonic() + wait, next(order), body, message))
                    consumer.qos(prefetch_count=1 + len(held))

                consumer.register_callback(handle)
                consumer.qos(prefetch_count=1)
                logger.info("serving %s beside the gradings", queue.name)
                while not stop.is_set():
                    timeout = POLL_SECONDS
                    if held:
                        timeout = min(timeout, max(0.01, held[0][0] - time.monotonic()))
                    with contextlib.suppress(TimeoutError):
                        conn.drain_events(timeout=timeout)
                    ran = False
                    while held and held[0][0] <= time.monotonic():
                        _due, _n, body, message = heapq.heappop(held)
                        run(body, message)
                        ran = True
                    if ran:
                        consumer.qos(prefetch_count=1 + len(held))
        except Exception:
            if stop.is_set():
                return
            logger.warning("housekeeping: the broker went away; reconnecting", exc_info=True)
            stop.wait(2.0)


class HousekeepingConsumer(bootsteps.StartStopStep):
    """Every worker serves the housekeeping queue (emails, grade passback, roster sync, the
    sweep it asks for on connecting) in a thread of its main process, with a connection of its
    own, beside the pool that grades: a housekeeping task never waits for a pool process, so a
    deadline night's backlog of gradings does not hold a password reset back. The worker's
    own consumer leaves that queue alone (``_leave_housekeeping_to_the_thread``)."""

    # Started once the pool has forked its processes: none of them inherits this thread.
    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.halt = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, parent: Any) -> None:
        app = parent.app
        name = settings.HOUSEKEEPING_QUEUE
        queue = app.amqp.queues.get(name) or Queue(name)
        self.halt.clear()
        self.thread = threading.Thread(
            target=serve_housekeeping,
            args=(app, queue, parent.hostname, self.halt),
            name="housekeeping",
            daemon=True,
        )
        self.thread.start()

    def stop(self, parent: Any) -> None:
        self.halt.set()
        if self.thread is not None:
            self.thread.join(timeout=5 * POLL_SECONDS)

    shutdown = stop


@celeryd_after_setup.connect
def _leave_housekeeping_to_the_thread(sender: str, instance: Any, **_: Any) -> None:
    queues = instance.app.amqp.queues
    name = settings.HOUSEKEEPING_QUEUE
    consumed = set(queues.consume_from or {})
    # A worker started for housekeeping alone (``-Q`` of that queue only) keeps it.
    if name in consumed and consumed - {name}:
        queues.deselect(name)
