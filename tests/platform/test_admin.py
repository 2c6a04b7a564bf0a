"""The admin: list pages load in a constant number of queries (re-grading: test_regrade_admin)."""

from __future__ import annotations

from django.utils import timezone

from submissions.models import ApiToken, GradingRun
from tests.platform.conftest import graded, make_submission


def test_it_lists_submissions_in_a_constant_number_of_queries(
    client, staff, enrollment, challenge, django_assert_num_queries
):
    submissions = [make_submission(enrollment, challenge) for _ in range(10)]
    client.force_login(staff)

    # session, user, the semester filter's choices (with their course), the challenge filter's
    # choices, the filtered and the total count, the page with enrolment, user and challenge,
    # the date hierarchy's range and its days
    with django_assert_num_queries(9):
        response = client.get("/admin/submissions/submission/")

    page = response.content.decode()
    assert all(str(submission.pk) in page for submission in submissions)
    assert "10 submissions" in page


def test_it_searches_by_handle(client, staff, enrollment, challenge):
    submission = make_submission(enrollment, challenge)
    client.force_login(staff)

    response = client.get("/admin/submissions/submission/", {"q": enrollment.handle})

    assert str(submission.pk) in response.content.decode()


def test_it_shows_a_submission_with_its_runs(client, staff, enrollment, challenge):
    submission = graded(enrollment, challenge, 150.0)
    GradingRun.objects.create(
        submission=submission,
        attempt=1,
        outcome=GradingRun.Outcome.GRADED,
        worker_host="gpu-host-7",
        score=150.0,
        finished_at=timezone.now(),
        log="model stderr: a line for staff",
    )
    client.force_login(staff)

    response = client.get(f"/admin/submissions/submission/{submission.pk}/change/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "gpu-host-7" in page and "a line for staff" in page


def test_it_offers_no_hand_edit_of_a_status_or_an_outcome(client, staff, enrollment, challenge):
    """They change only through the state machine, which refreshes the standing and knows
    which attempt holds a claim."""
    submission = graded(enrollment, challenge, 150.0)
    run = GradingRun.objects.create(submission=submission, attempt=1, outcome="graded")
    client.force_login(staff)

    submission_page = client.get(f"/admin/submissions/submission/{submission.pk}/change/")
    run_page = client.get(f"/admin/submissions/gradingrun/{run.pk}/change/")

    assert (submission_page.status_code, run_page.status_code) == (200, 200)
    assert 'name="status"' not in submission_page.content.decode()
    assert 'name="outcome"' not in run_page.content.decode()


def test_it_loads_every_changelist(client, staff, enrollment, challenge):
    run = GradingRun.objects.create(
        submission=make_submission(enrollment, challenge), attempt=1, worker_host="host-a"
    )
    ApiToken.issue(enrollment.user)
    client.force_login(staff)

    # Each list shows its row, not only a page.
    for model, shows in (
        ("courses/course", challenge.semester.course.title),
        ("courses/semester", challenge.semester.title),
        ("courses/challenge", challenge.title),
        ("courses/enrollment", enrollment.handle),
        ("submissions/gradingrun", f"attempt {run.attempt} of {run.submission_id}"),
        ("submissions/apitoken", enrollment.user.username),
        ("submissions/regradebatch", "0 re-grades"),
    ):
        response = client.get(f"/admin/{model}/")
        assert response.status_code == 200, model
        assert shows in response.content.decode(), model


def test_it_redirects_bookmarks_of_the_admin_pages_from_before_courses_moved(
    client, staff, challenge
):
    client.force_login(staff)

    response = client.get(f"/admin/leaderboard/challenge/{challenge.pk}/change/?x=1")

    assert response.status_code == 301
    assert response["Location"] == f"/admin/courses/challenge/{challenge.pk}/change/?x=1"
    assert client.get(response["Location"]).status_code == 200


def test_it_shows_an_api_token_by_its_prefix_and_makes_none(client, staff, student, token):
    client.force_login(staff)
    row = ApiToken.objects.get(user=student)

    listing = client.get("/admin/submissions/apitoken/").content.decode()
    page = client.get(f"/admin/submissions/apitoken/{row.pk}/change/")

    assert token[:8] in listing and token not in listing
    assert page.status_code == 200 and token not in page.content.decode()
    assert client.get("/admin/submissions/apitoken/add/").status_code == 403
