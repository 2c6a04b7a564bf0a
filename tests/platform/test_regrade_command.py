"""``manage.py regrade``: starts a batch, waits showing progress (a bar on a terminal), prints the
report; guards against the wrong semester; publishes, cancels and follows a batch by number."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from submissions.management.commands import regrade as command
from submissions.models import GradingRun, RegradeBatch
from tests.platform.conftest import graded
from worker.tasks import regrade_attempt

# Each test starts its grading runners anew (the settings they read change per test).
pytestmark = pytest.mark.usefixtures("fresh_runners")


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
    assert "0 of 1 graded, 0 failure(s)" in text
    assert "1 of 1 graded, 0 failure(s)" in text
    assert "Complete (not published)" in text
    assert f"{enrollment.handle} (student) {submission.pk}: 150.0 → " in text
    batch = RegradeBatch.objects.get()
    assert f"publish it with `manage.py regrade --publish {batch.pk}`" in text


def test_it_refuses_an_unknown_challenge(db):
    with pytest.raises(CommandError, match="no challenge"):
        call_command("regrade", "--challenge", "nope")


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_it_draws_a_progress_bar_on_a_terminal(enrollment, challenge, tiny_models, monkeypatch):
    graded(enrollment, challenge, 150.0, content=tiny_models.zeros_bytes())

    def worker_elsewhere(seconds: float) -> None:
        for run_id in GradingRun.objects.filter(outcome=GradingRun.Outcome.QUEUED).values_list(
            "pk", flat=True
        ):
            regrade_attempt.run(run_id)

    monkeypatch.setattr(command.time, "sleep", worker_elsewhere)
    out = Terminal()

    call_command("regrade", "--challenge", challenge.slug, stdout=out)

    text = out.getvalue()
    assert "\r[" + "." * command.BAR_WIDTH + "] 0 of 1 graded, 0 failure(s), 0:00" in text
    assert "\r[" + "#" * command.BAR_WIDTH + "] 1 of 1 graded, 0 failure(s)" in text
    assert f"re-grade #{RegradeBatch.objects.get().pk}: Published" in text


def test_the_bar_fills_in_proportion():
    assert command.bar(command.Progress(done=1, total=3, failed=0), 75.0) == (
        "[" + "#" * 10 + "." * 20 + "] 1 of 3 graded, 0 failure(s), 1:15"
    )


def test_it_refuses_a_challenge_of_another_semester(enrollment, challenge, semester):
    with pytest.raises(CommandError, match=f"belongs to {semester.course.slug}/{semester.slug}"):
        call_command("regrade", "--challenge", challenge.slug, "--semester", "ss2020")
    assert not RegradeBatch.objects.exists()


def test_it_accepts_the_semester_by_slug_or_with_its_course(enrollment, challenge, semester):
    graded(enrollment, challenge, 150.0)
    for where in (semester.slug, f"{semester.course.slug}/{semester.slug}"):
        call_command(
            "regrade",
            "--challenge",
            challenge.slug,
            "--semester",
            where,
            "--no-wait",
            stdout=StringIO(),
        )
    assert RegradeBatch.objects.count() == 2


def test_it_publishes_and_cancels_by_number(enrollment, challenge, staff):
    graded(enrollment, challenge, 150.0)
    out = StringIO()
    call_command("regrade", "--challenge", challenge.slug, "--dry-run", "--no-wait", stdout=out)
    dry = RegradeBatch.objects.get()

    with pytest.raises(CommandError, match="not complete"):
        call_command("regrade", "--publish", str(dry.pk), stdout=out)
    call_command("regrade", "--cancel", str(dry.pk), "--user", staff.username, stdout=out)

    dry.refresh_from_db()
    assert dry.status == RegradeBatch.Status.CANCELLED
    assert f"re-grade #{dry.pk} cancelled: 1 attempt(s) not run" in out.getvalue()
    assert "Cancelled by staff" in dry.note


def test_it_publishes_a_complete_dry_run(enrollment, challenge, tiny_models, staff):
    submission = graded(enrollment, challenge, 150.0, content=tiny_models.zeros_bytes())
    call_command(
        "regrade", "--challenge", challenge.slug, "--dry-run", "--no-wait", stdout=StringIO()
    )
    dry = RegradeBatch.objects.get()
    regrade_attempt.run(dry.runs.get().pk)
    out = StringIO()

    call_command("regrade", "--watch", str(dry.pk), stdout=out)
    call_command("regrade", "--publish", str(dry.pk), "--user", staff.username, stdout=out)

    text = out.getvalue()
    assert "Complete (not published)" in text
    assert f"re-grade #{dry.pk} published: 1 submission(s)" in text
    submission.refresh_from_db()
    assert submission.score == dry.runs.get().score != 150.0
