"""The doorbell when the broker or the mail server is down: what was committed stands, the
failure is logged, and work whose message failed is marked for the next sweep.

These tests use a real Redis server, started on a free port and stopped by the test, and a
real SMTP client pointed at a closed port: the failures are the real ones.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.test import Client

from config.celery import app
from courses.models import Enrollment
from submissions.doorbell import GRADE_SUBMISSION, REGRADE_ATTEMPT
from submissions.models import GradingRun, Submission
from submissions.regrade import regrade_batch_start
from submissions.sweep import submissions_sweep
from tests.platform.conftest import graded, make_user
from tests.platform.test_api import post_model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server of the test's own, which the test may stop and start again."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        pytest.fail("redis-server did not start")

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def messages(self) -> list[str]:
        """Task names of the messages waiting in the default queue."""
        import json

        raw = redis.Redis.from_url(self.url).lrange("celery", 0, -1)
        return [json.loads(m)["headers"]["task"] for m in raw]


def forget_connections() -> None:
    """Drop the app's pooled broker connections, as a fresh process would have none."""
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[RedisServer]:
    """The project's Celery app sending to a real Redis server of this test's own."""
    server = RedisServer(tmp_path)
    server.start()
    # Undo the platform tests' recorder: this test sends for real.
    monkeypatch.setattr(app, "send_task", types.MethodType(Celery.send_task, app))
    changed = {
        "broker_url": server.url,
        "broker_transport_options": {},
        # Give up on a dead broker within a second or two rather than Celery's long default.
        "broker_connection_timeout": 1.0,
        "task_publish_retry_policy": {"max_retries": 1},
    }
    # Celery reads the broker from the environment first, then the settings' own names.
    monkeypatch.setenv("CELERY_BROKER_URL", server.url)
    changed.update({f"CELERY_{key.upper()}": value for key, value in changed.items()})
    before = {key: app.conf.get(key) for key in changed}
    app.conf.update(changed)
    forget_connections()
    yield server
    if server.proc and server.proc.poll() is None:
        server.stop()
    app.conf.update(before)
    forget_connections()


def test_it_answers_201_and_marks_the_upload_for_the_sweep_when_the_broker_is_down(
    transactional_db, broker, token, challenge, tiny_models, caplog
):
    first = post_model(Client(), challenge.slug, token, tiny_models.zeros)
    assert first.status_code == 201
    assert broker.messages() == [GRADE_SUBMISSION]
    broker.stop()

    response = post_model(Client(), challenge.slug, token, tiny_models.zeros)

    assert response.status_code == 201, response.content[:300]
    assert response.json()["status"] == "queued"
    down = Submission.objects.get(pk=response.json()["id"])
    assert down.unsent and down.status == Submission.Status.QUEUED
    assert f"sending {GRADE_SUBMISSION}" in caplog.text
    # The broker is back: the next sweep sends it at once, not after 15 minutes.
    broker.start()
    forget_connections()
    report = submissions_sweep()
    assert report.resent == [str(down.pk)]
    assert broker.messages() == [GRADE_SUBMISSION]
    down.refresh_from_db()
    assert not down.unsent


def test_it_starts_a_whole_regrade_when_the_broker_is_down_and_marks_every_attempt(
    transactional_db, broker, enrollment, semester, challenge
):
    other = Enrollment.objects.create(user=make_user("other"), semester=semester)
    graded(enrollment, challenge, 120.0)
    graded(other, challenge, 130.0)
    broker.stop()
    staff = make_user("ta", is_staff=True, is_superuser=True)

    batch = regrade_batch_start(challenge, staff, "a new test set")

    runs = GradingRun.objects.filter(batch=batch)
    assert runs.count() == 2
    # Every send failed and none stopped the others: all are marked for the sweep.
    assert all(run.unsent for run in runs)
    broker.start()
    forget_connections()
    report = submissions_sweep()
    assert sorted(report.runs.resent) == sorted(run.pk for run in runs)
    assert broker.messages() == [REGRADE_ATTEMPT, REGRADE_ATTEMPT]
