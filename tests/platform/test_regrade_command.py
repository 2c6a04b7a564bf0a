"""``manage.py regrade``: starts a batch, waits printing progress, prints the report."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from submissions.management.commands import regrade as command
from submissions.models import GradingRun, RegradeBatch
from tests.platform.conftest import graded
from worker import tasks
from worker.tasks import regrade_attempt


@pytest.fixture(autouse=True)
def fresh_runners():
    tasks._runners.clear()
    yield
    tasks._runners.clear()


def test_it_starts_a_batch_without_waiting(enrollment, challenge):
    graded(enrollment, challenge, 150.0)
    out = StringIO()

    call_command("regrade", "--challenge", challenge.slug, "--no-wait", stdout=out)

    batch = RegradeBatch.objects.get()
    assert f"re-grade #{batch.pk}: 1 submission(s) queued" in out.getvalue()
    assert batch.created_by is None


def test_it_waits_and_prints_the_report(enrollment, challenge, tiny_models, monkeypatch):
    submission = graded(enrollment, challenge, 150.0, content=tiny_models.zeros_bytes())

    def worker_elsewhere(seconds: float) -> None:
        # Stands in for a worker on another host grading while the command waits.
        queued = GradingRun.objects.filter(outcome=GradingRun.Outcome.QUEUED)
        for run_id in queued.values_list("pk", flat=True):
            regrade_attempt.run(run_id)

    monkeypatch.setattr(command.time, "sleep", worker_elsewhere)
    out = StringIO()

    call_command("regrade", "--challenge", challenge.slug, "--dry-run", stdout=out)

    text = out.getvalue()
    assert "0/1 graded, 0 failed" in text
    assert "1/1 graded, 0 failed" in text
    assert "Complete (not published)" in text
    assert f"{enrollment.handle} (student) {submission.pk}: 150.0 → " in text


def test_it_refuses_an_unknown_challenge(db):
    with pytest.raises(CommandError, match="no challenge"):
        call_command("regrade", "--challenge", "nope")
