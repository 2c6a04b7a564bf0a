"""The admin: list pages load in a constant number of queries (re-grading: test_regrade_admin)."""

from __future__ import annotations

from submissions.models import GradingRun
from tests.platform.conftest import graded, make_submission


def test_it_lists_submissions_in_a_constant_number_of_queries(
    client, staff, enrollment, challenge, django_assert_num_queries
):
    for _ in range(10):
        make_submission(enrollment, challenge)
    client.force_login(staff)

    # session, user, the semester filter's choices (with their course), the challenge filter's
    # choices, the filtered and the total count, the page with enrolment, user and challenge,
    # the date hierarchy's range and its days
    with django_assert_num_queries(9):
        response = client.get("/admin/submissions/submission/")

    assert response.status_code == 200


def test_it_searches_by_handle(client, staff, enrollment, challenge):
    submission = make_submission(enrollment, challenge)
    client.force_login(staff)

    response = client.get("/admin/submissions/submission/", {"q": enrollment.handle})

    assert str(submission.pk) in response.content.decode()


def test_it_shows_a_submission_with_its_runs(client, staff, enrollment, challenge):
    submission = graded(enrollment, challenge, 150.0)
    client.force_login(staff)

    response = client.get(f"/admin/submissions/submission/{submission.pk}/change/")

    assert response.status_code == 200


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
    client.force_login(staff)

    for model in (
        "courses/course",
        "courses/semester",
        "courses/challenge",
        "courses/enrollment",
        "submissions/gradingrun",
        "submissions/apitoken",
        "submissions/regradebatch",
    ):
        assert client.get(f"/admin/{model}/").status_code == 200, model


def test_it_redirects_bookmarks_of_the_admin_pages_from_before_courses_moved(
    client, staff, challenge
):
    client.force_login(staff)

    response = client.get(f"/admin/leaderboard/challenge/{challenge.pk}/change/?x=1")

    assert response.status_code == 301
    assert response["Location"] == f"/admin/courses/challenge/{challenge.pk}/change/?x=1"
    assert client.get(response["Location"]).status_code == 200
