"""The doorbell when the broker or the mail server is down: what was committed stands, the
failure is logged, and work whose message failed is marked for the next sweep.

These tests use a real Redis server, started on a free port and stopped by the test, and a
real SMTP client pointed at a closed port: the failures are the real ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from courses.models import Enrollment
from submissions.doorbell import GRADE_SUBMISSION, REGRADE_ATTEMPT
from submissions.models import GradingRun, Submission
from submissions.regrade import regrade_batch_start
from submissions.sweep import submissions_sweep
from tests.brokers import RedisServer, app_sending_to, forget_connections
from tests.platform.conftest import graded, make_user
from tests.platform.test_api import post_model


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[RedisServer]:
    """The project's Celery app sending to a real Redis server of this test's own."""
    server = RedisServer(tmp_path)
    server.start()
    with app_sending_to(monkeypatch, server.url, {}):
        yield server
    server.stop()


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


@pytest.mark.slow  # over four seconds: grades through the sandbox
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
