"""The grade book (/challenges/<slug>/staff/) and its CSV pass list."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from courses.models import Enrollment
from submissions.models import Submission
from tests.platform.conftest import graded, make_submission, make_user


@pytest.fixture
def roster(challenge, enrollment, other_student, ta):
    """student: best 3.5 (passes) then a failed upload; other: a perfect model; never: nothing."""
    semester = challenge.semester
    other = Enrollment.objects.get(user=other_student)
    never = Enrollment.objects.create(user=make_user("never"), semester=semester)
    best = graded(enrollment, challenge, 3.5)
    best.created_at = datetime(2026, 11, 20, 11, 30, 5, tzinfo=UTC)
    best.save()
    make_submission(enrollment, challenge, status=Submission.Status.FAILED, error="shape")
    perfect = graded(other, challenge, math.inf)
    perfect.created_at = datetime(2026, 11, 21, 8, 0, 0, tzinfo=UTC)
    perfect.save()
    return enrollment, other, never


@pytest.mark.parametrize("path", ["staff/", "staff/passes.csv"])
@pytest.mark.parametrize("who", ["student", "outsider"])
def test_it_refuses_students_and_outsiders(client, challenge, who, path, request):
    client.force_login(request.getfixturevalue(who))

    assert client.get(f"/challenges/{challenge.slug}/{path}").status_code == 404


@pytest.mark.parametrize("path", ["staff/", "staff/passes.csv"])
def test_it_sends_anonymous_visitors_to_sign_in(client, challenge, path):
    response = client.get(f"/challenges/{challenge.slug}/{path}")

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("who", ["staff", "ta"])
def test_it_shows_staff_who_is_behind_each_handle(client, challenge, roster, who, request):
    student, other, never = roster
    client.force_login(request.getfixturevalue(who))

    page = client.get(f"/challenges/{challenge.slug}/staff/").content.decode()

    for enrollment in (student, other, never):
        assert enrollment.user.username in page
        assert enrollment.user.email in page
        assert enrollment.handle in page


def test_it_exports_the_pass_list(client, staff, challenge, roster):
    student, other, never = roster
    client.force_login(staff)

    response = client.get(f"/challenges/{challenge.slug}/staff/passes.csv")

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    assert response.content.decode().splitlines() == [
        "username,email,handle,best_score,passed,submissions,best_submitted_at,late_days",
        f"never,never@example.com,{never.handle},,no,0,,0",
        f"other,other@example.com,{other.handle},Infinity,yes,1,2026-11-21T09:00:00+01:00,0",
        f"student,student@example.com,{student.handle},3.5,yes,2,2026-11-20T12:30:05+01:00,0",
    ]


def test_it_builds_the_grade_book_in_a_constant_number_of_queries(
    client, staff, challenge, roster, django_assert_num_queries
):
    client.force_login(staff)

    # session; user; the challenge with its semester and course; the best submission per
    # student; the upload counts; the students with their accounts; their grading seconds
    with django_assert_num_queries(7):
        response = client.get(f"/challenges/{challenge.slug}/staff/")

    assert len(response.context["rows"]) == 3
