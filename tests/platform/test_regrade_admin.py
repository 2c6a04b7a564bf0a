"""Re-grading from the admin: both actions (and the challenge page's button) through the test
client with their confirmation step, who may use them, the admin log, the batch list, the
challenge page's live progress, publishing and cancelling, and the report page."""

from __future__ import annotations

from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.utils import timezone

from courses.models import Enrollment
from submissions.doorbell import REGRADE_ATTEMPT
from submissions.models import GradingRun, RegradeBatch, Submission
from tests.platform.conftest import graded, make_submission, make_user


def select(client, model, action, *pks, reason="grader fixed", dry_run=False, confirm=True):
    """Run an admin action on the list: choose it, then (``confirm``) answer its confirmation."""
    data = {"action": action, "_selected_action": [str(pk) for pk in pks]}
    if confirm:
        data.update(post="yes", reason=reason)
        if dry_run:
            data["dry_run"] = "on"
    return client.post(f"/admin/{model}/", data, follow=True)


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
    assert (batch.reason, batch.dry_run) == ("grader fixed", False)
    run = batch.runs.get()
    assert (run.submission, run.outcome) == (done, GradingRun.Outcome.QUEUED)
    assert [(m.name, m.args) for m in sent] == [(REGRADE_ATTEMPT, [run.pk])]
    done.refresh_from_db()
    # The leaderboard keeps the old result until the batch is published.
    assert (done.status, done.score) == (Submission.Status.GRADED, 150.0)
    entry = LogEntry.objects.get()
    assert entry.user == staff
    assert "grader fixed" in entry.get_change_message()


def test_it_regrades_a_whole_challenge(client, staff, enrollment, other_student, challenge, sent):
    graded(enrollment, challenge, 150.0)
    graded(enrollment, challenge, 0.5, status=Submission.Status.FAILED)
    make_submission(enrollment, challenge)  # still queued: left alone
    client.force_login(staff)

    response = select(client, "courses/challenge", "regrade_challenge", challenge.pk)

    assert "2 submission(s) queued for re-grading." in response.content.decode()
    assert RegradeBatch.objects.get().total == 2
    assert GradingRun.objects.filter(outcome=GradingRun.Outcome.QUEUED).count() == 2


def test_it_refuses_a_closed_semester(client, staff, enrollment, challenge, semester):
    graded(enrollment, challenge, 150.0)
    semester.closed = True
    semester.save()
    client.force_login(staff)

    response = select(client, "courses/challenge", "regrade_challenge", challenge.pk)

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
    # A TA of the semester: the admin shows staff without the grade-book permission no other.
    Enrollment.objects.create(user=clerk, semester=challenge.semester, role=Enrollment.Role.TA)
    clerk.user_permissions.add(
        Permission.objects.get(codename="view_submission"),
        Permission.objects.get(codename="change_submission"),
        Permission.objects.get(codename="change_challenge"),
    )
    client.force_login(clerk)

    page = client.get("/admin/submissions/submission/").content.decode()
    select(client, "submissions/submission", "regrade_selected", done.pk)
    select(client, "courses/challenge", "regrade_challenge", challenge.pk)

    assert "regrade_selected" not in page
    assert not RegradeBatch.objects.exists()


def test_it_lists_batches_with_their_progress(client, staff, enrollment, challenge):
    graded(enrollment, challenge, 150.0)
    client.force_login(staff)
    select(client, "courses/challenge", "regrade_challenge", challenge.pk)

    response = client.get("/admin/submissions/regradebatch/")

    assert "0 of 1 graded, 0 failure(s)" in response.content.decode()


def test_it_shows_the_report_to_staff_only(client, staff, student, enrollment, challenge):
    graded(enrollment, challenge, 150.0)
    client.force_login(staff)
    select(client, "courses/challenge", "regrade_challenge", challenge.pk)
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


# --- the confirmation step --------------------------------------------------------------------


def test_the_action_first_asks_for_a_reason_and_shows_what_it_will_do(
    client, staff, enrollment, challenge
):
    done = graded(enrollment, challenge, 150.0)
    pending = make_submission(enrollment, challenge)
    client.force_login(staff)

    page = select(
        client, "submissions/submission", "regrade_selected", done.pk, pending.pk, confirm=False
    )
    blank = select(client, "submissions/submission", "regrade_selected", done.pk, reason=" ")

    text = page.content.decode()
    assert "Re-grade submissions" in text
    assert challenge.slug in text
    assert "1 selected submission still queued or grading: left alone." in text
    assert f'name="_selected_action" value="{done.pk}"' in text
    assert "This field is required." in blank.content.decode()
    assert not RegradeBatch.objects.exists()


def test_a_dry_run_from_the_admin(client, staff, enrollment, challenge):
    graded(enrollment, challenge, 150.0)
    client.force_login(staff)

    response = select(client, "courses/challenge", "regrade_challenge", challenge.pk, dry_run=True)

    batch = RegradeBatch.objects.get()
    assert batch.dry_run
    assert f"Dry run #{batch.pk} of {challenge.slug}" in response.content.decode()


def test_the_challenge_page_button_regrades_that_challenge(client, staff, enrollment, challenge):
    graded(enrollment, challenge, 150.0)
    client.force_login(staff)
    url = f"/admin/courses/challenge/{challenge.pk}/regrade/"

    form = client.get(url)
    response = client.post(url, {"post": "yes", "reason": "test set replaced"})

    assert "Start re-grade" in form.content.decode()
    assert response.status_code == 302
    assert response["Location"].endswith(
        f"/admin/courses/challenge/{challenge.pk}/change/#regrades"
    )
    assert RegradeBatch.objects.get().reason == "test set replaced"


def test_the_challenge_page_button_is_refused_without_the_permission(client, enrollment, challenge):
    graded(enrollment, challenge, 150.0)
    clerk = make_user("clerk", is_staff=True)
    # A TA of the semester: the admin shows staff without the grade-book permission no other.
    Enrollment.objects.create(user=clerk, semester=challenge.semester, role=Enrollment.Role.TA)
    clerk.user_permissions.add(Permission.objects.get(codename="change_challenge"))
    client.force_login(clerk)

    response = client.post(
        f"/admin/courses/challenge/{challenge.pk}/regrade/",
        {"post": "yes", "reason": "test set replaced"},
    )
    page = client.get(f"/admin/courses/challenge/{challenge.pk}/change/").content.decode()

    assert response.status_code == 403
    assert f"/admin/courses/challenge/{challenge.pk}/regrade/" not in page
    assert not RegradeBatch.objects.exists()


# --- progress, publishing, cancelling ---------------------------------------------------------


def start(client, challenge, **kwargs) -> RegradeBatch:
    select(client, "courses/challenge", "regrade_challenge", challenge.pk, **kwargs)
    return RegradeBatch.objects.latest("pk")


def test_the_challenge_page_shows_progress_and_the_endpoint_keeps_it_live(
    client, staff, enrollment, other_student, challenge
):
    graded(enrollment, challenge, 150.0)
    graded(other_student.enrollments.get(), challenge, 50.0)
    client.force_login(staff)
    batch = start(client, challenge)
    first = batch.runs.order_by("pk").first()
    GradingRun.objects.filter(pk=first.pk).update(outcome=GradingRun.Outcome.REJECTED)

    page = client.get(f"/admin/courses/challenge/{challenge.pk}/change/").content.decode()
    state = client.get("/admin/submissions/regradebatch/progress/", {"id": batch.pk}).json()

    assert f'data-batch="{batch.pk}" data-running="1"' in page
    assert "1 of 2 graded, 1 failure(s)" in page
    assert "leaderboard/regrade_progress.js" in page
    assert f"/admin/submissions/regradebatch/?challenge__id__exact={challenge.pk}" in page
    assert state["batches"] == [
        {
            "id": batch.pk,
            "status": "running",
            "status_label": "Running",
            "done": 1,
            "total": 2,
            "failed": 1,
            "progress": "1 of 2 graded, 1 failure(s)",
            "note": "",
            "can_publish": False,
            "can_cancel": True,
        }
    ]


def test_the_progress_endpoint_is_for_staff_only(client, student, enrollment, challenge, staff):
    graded(enrollment, challenge, 150.0)
    client.force_login(staff)
    batch = start(client, challenge)
    client.force_login(student)

    response = client.get("/admin/submissions/regradebatch/progress/", {"id": batch.pk})

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_publish_a_complete_dry_run_from_the_admin(client, staff, enrollment, challenge):
    done = graded(enrollment, challenge, 150.0)
    client.force_login(staff)
    batch = start(client, challenge, dry_run=True)
    GradingRun.objects.filter(batch=batch).update(
        outcome=GradingRun.Outcome.GRADED, score=7.0, passed=True, finished_at=timezone.now()
    )
    RegradeBatch.objects.filter(pk=batch.pk).update(status=RegradeBatch.Status.COMPLETE)
    back = f"/admin/courses/challenge/{challenge.pk}/change/"

    get = client.get(f"/admin/submissions/regradebatch/{batch.pk}/publish/")
    response = client.post(
        f"/admin/submissions/regradebatch/{batch.pk}/publish/", {"next": back}, follow=True
    )

    assert get.status_code == 405
    assert response.redirect_chain[0][0] == back
    assert f"Re-grade #{batch.pk} published: 1 submission(s) updated." in response.content.decode()
    done.refresh_from_db()
    assert done.score == 7.0


def test_publishing_a_running_batch_is_refused_with_a_reason(client, staff, enrollment, challenge):
    graded(enrollment, challenge, 150.0)
    client.force_login(staff)
    batch = start(client, challenge)

    response = client.post(f"/admin/submissions/regradebatch/{batch.pk}/publish/", follow=True)

    assert "not complete, or already published" in response.content.decode()
    batch.refresh_from_db()
    assert batch.status == RegradeBatch.Status.RUNNING


def test_staff_cancel_a_running_batch(client, staff, enrollment, challenge):
    graded(enrollment, challenge, 150.0)
    client.force_login(staff)
    batch = start(client, challenge)

    response = client.post(f"/admin/submissions/regradebatch/{batch.pk}/cancel/", follow=True)

    assert f"Re-grade #{batch.pk} cancelled (1 attempt(s) not run)." in response.content.decode()
    batch.refresh_from_db()
    assert batch.status == RegradeBatch.Status.CANCELLED
    assert LogEntry.objects.filter(object_id=str(batch.pk)).count() == 2


def test_publish_and_cancel_need_the_permission(client, enrollment, challenge, staff):
    graded(enrollment, challenge, 150.0)
    client.force_login(staff)
    batch = start(client, challenge)
    clerk = make_user("clerk", is_staff=True)
    # A TA of the semester: the admin shows staff without the grade-book permission no other.
    Enrollment.objects.create(user=clerk, semester=challenge.semester, role=Enrollment.Role.TA)
    clerk.user_permissions.add(Permission.objects.get(codename="view_regradebatch"))
    client.force_login(clerk)

    page = client.get(f"/admin/submissions/regradebatch/{batch.pk}/change/").content.decode()
    cancel = client.post(f"/admin/submissions/regradebatch/{batch.pk}/cancel/")

    assert cancel.status_code == 403
    assert 'data-action="can_cancel" class="inline-action" hidden' in page
    batch.refresh_from_db()
    assert batch.status == RegradeBatch.Status.RUNNING


def test_closing_a_semester_warns_about_running_regrades(
    client, staff, enrollment, challenge, semester
):
    graded(enrollment, challenge, 150.0)
    client.force_login(staff)
    start(client, challenge)

    response = select(client, "courses/semester", "close", semester.pk, confirm=False)

    assert "1 re-grade(s) still running will not publish" in response.content.decode()


def test_the_progress_view_ignores_malformed_ids(client, staff):
    client.force_login(staff)

    for value in ["²", "٣", "-1", "9" * 30, ""]:
        response = client.get("/admin/submissions/regradebatch/progress/", {"id": value})
        assert response.status_code == 200
        assert response.json() == {"batches": []}
