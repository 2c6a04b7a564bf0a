"""Re-grading from the admin: both actions through the test client, who may use them, the admin
log, the batch list and the report page."""

from __future__ import annotations

from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission

from submissions.models import GradingRun, RegradeBatch, Submission
from tests.platform.conftest import graded, make_submission, make_user
from worker.celery import REGRADE_ATTEMPT


def select(client, model, action, *pks):
    return client.post(
        f"/admin/{model}/",
        {"action": action, "_selected_action": [str(pk) for pk in pks]},
        follow=True,
    )


def test_it_regrades_selected_submissions_without_touching_their_results(
    client, staff, enrollment, challenge, sent, django_capture_on_commit_callbacks
):
    done = graded(enrollment, challenge, 150.0)
    pending = make_submission(enrollment, challenge)
    client.force_login(staff)

    with django_capture_on_commit_callbacks(execute=True):
        response = select(client, "submissions/submission", "regrade_selected", done.pk, pending.pk)

    assert "1 submission(s) queued for re-grading." in response.content.decode()
    batch = RegradeBatch.objects.get()
    assert (batch.challenge, batch.created_by, batch.total) == (challenge, staff, 1)
    assert batch.reason == "admin: re-grade selected"
    run = batch.runs.get()
    assert (run.submission, run.outcome) == (done, GradingRun.Outcome.QUEUED)
    assert [(m.name, m.args) for m in sent] == [(REGRADE_ATTEMPT, [run.pk])]
    done.refresh_from_db()
    # The leaderboard keeps the old result until the batch is published.
    assert (done.status, done.score) == (Submission.Status.GRADED, 150.0)
    entry = LogEntry.objects.get()
    assert entry.user == staff
    assert "admin: re-grade selected" in entry.get_change_message()


def test_it_regrades_a_whole_challenge(client, staff, enrollment, other_student, challenge, sent):
    graded(enrollment, challenge, 150.0)
    graded(enrollment, challenge, 0.5, status=Submission.Status.FAILED)
    make_submission(enrollment, challenge)  # still queued: left alone
    client.force_login(staff)

    response = select(client, "leaderboard/challenge", "regrade_challenge", challenge.pk)

    assert "2 submission(s) queued for re-grading." in response.content.decode()
    assert RegradeBatch.objects.get().total == 2
    assert GradingRun.objects.filter(outcome=GradingRun.Outcome.QUEUED).count() == 2


def test_it_refuses_a_closed_semester(client, staff, enrollment, challenge, semester):
    graded(enrollment, challenge, 150.0)
    semester.closed = True
    semester.save()
    client.force_login(staff)

    response = select(client, "leaderboard/challenge", "regrade_challenge", challenge.pk)

    assert "semester is closed" in response.content.decode()
    assert not RegradeBatch.objects.exists()


def test_it_refuses_a_user_who_is_not_staff(client, student, enrollment, challenge):
    done = graded(enrollment, challenge, 150.0)
    client.force_login(student)

    response = select(client, "submissions/submission", "regrade_selected", done.pk)

    assert response.redirect_chain[0][0].startswith("/admin/login/")
    assert not RegradeBatch.objects.exists()


def test_it_refuses_staff_without_the_regrade_permission(client, enrollment, challenge):
    done = graded(enrollment, challenge, 150.0)
    clerk = make_user("clerk", is_staff=True)
    clerk.user_permissions.add(
        Permission.objects.get(codename="view_submission"),
        Permission.objects.get(codename="change_submission"),
        Permission.objects.get(codename="change_challenge"),
    )
    client.force_login(clerk)

    page = client.get("/admin/submissions/submission/").content.decode()
    select(client, "submissions/submission", "regrade_selected", done.pk)
    select(client, "leaderboard/challenge", "regrade_challenge", challenge.pk)

    assert "regrade_selected" not in page
    assert not RegradeBatch.objects.exists()


def test_it_lists_batches_with_their_progress(client, staff, enrollment, challenge):
    graded(enrollment, challenge, 150.0)
    client.force_login(staff)
    select(client, "leaderboard/challenge", "regrade_challenge", challenge.pk)

    response = client.get("/admin/submissions/regradebatch/")

    assert "0 of 1 graded, 0 failure(s)" in response.content.decode()


def test_it_shows_the_report_to_staff_only(client, staff, student, enrollment, challenge):
    graded(enrollment, challenge, 150.0)
    client.force_login(staff)
    select(client, "leaderboard/challenge", "regrade_challenge", challenge.pk)
    batch = RegradeBatch.objects.get()

    page = client.get(f"/staff/regrades/{batch.pk}/")
    csv = client.get(f"/staff/regrades/{batch.pk}/", {"format": "csv"})
    client.force_login(student)
    refused = client.get(f"/staff/regrades/{batch.pk}/")

    assert page.status_code == 200
    assert "No changes." in page.content.decode()
    assert csv["Content-Type"].startswith("text/csv")
    assert csv.content.decode().startswith("submission,handle,username,old_score")
    assert refused.status_code == 404
