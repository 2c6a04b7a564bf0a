"""This process's heartbeat: a thread that beats its ``WorkerHeartbeat`` row while it lives.

Every pool process beats its own row (``<celery hostname>:<pid>``), so the death of one pool
child is seen as well as that of the whole worker; the claims it makes carry the same name
(``this_worker``). A process killed with ``kill -9`` simply stops beating, and after
``GRADER_WORKER_DEAD_SECONDS`` the sweep (or a re-delivered message) moves its work on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import close_old_connections, connection

from submissions import heartbeats

logger = logging.getLogger(__name__)

#: the Celery node name (``worker@host``), set in the main process before it forks its pool
node = {"name": ""}


def process_name(hostname: str | None = None) -> str:
    return f"{hostname or node['name'] or 'worker'}:{os.getpid()}"


def forget_previous_life(node_name: str) -> None:
    """Called in the main process before it forks: every beating row of this node is from a
    previous run of it (kill -9, a crash), so it is dead."""
    from django.utils import timezone

    from submissions.models import WorkerHeartbeat

    WorkerHeartbeat.objects.filter(
        name__startswith=f"{node_name}:", stopped_at__isnull=True
    ).update(stopped_at=timezone.now(), current_job="")
    connection.close()  # never hand an open connection to the forked pool


class Heartbeat(threading.Thread):
    def __init__(self, name: str, host: str, runner: str) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.worker_name, self.host, self.runner = name, host, runner
        self.job = ""
        self.halt = threading.Event()

    def beat(self, job: str | None = None) -> None:
        try:
            heartbeats.beat(
                self.worker_name,
                host=self.host,
                device=settings.GRADER_DEVICE,
                runner=self.runner,
                job=job,
            )
        except Exception as exc:
            # The database may be restarting: keep beating, with a fresh connection next time.
            logger.warning("heartbeat of %s failed: %s", self.worker_name, exc)
            close_old_connections()

    def run(self) -> None:
        try:
            while not self.halt.wait(float(settings.GRADER_HEARTBEAT_SECONDS)):
                self.beat()
        finally:
            connection.close()


_current: dict[str, Heartbeat] = {}


def start(host: str, runner: str = "") -> Heartbeat:
    """Beat now (so the process is alive before it takes work) and then in the background."""
    heartbeat = Heartbeat(process_name(host), host, runner)
    heartbeat.beat(job="")
    heartbeat.start()
    _current["beat"] = heartbeat
    return heartbeat


def stop() -> None:
    heartbeat = _current.pop("beat", None)
    if heartbeat is None:
        return
    heartbeat.halt.set()
    try:
        heartbeats.stopped(heartbeat.worker_name)
    except Exception:
        logger.warning("could not record that %s stopped", heartbeat.worker_name, exc_info=True)


@contextmanager
def job(what: str) -> Iterator[None]:
    """Show ``what`` as this process's current job while the block runs."""
    heartbeat = _current.get("beat")
    if heartbeat is not None:
        heartbeat.beat(job=what)
    try:
        yield
    finally:
        if heartbeat is not None:
            heartbeat.beat(job="")
