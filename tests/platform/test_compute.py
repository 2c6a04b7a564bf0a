"""Compute, visible: grading seconds per upload (admin), per student (grade book), per challenge
and hour (health page, a chart with its tables), and coarsely on a student's own result."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from courses.models import Enrollment
from submissions.compute import compute_per_hour, grading_seconds_by_username
from submissions.models import GradingRun, Submission
from tests.platform.conftest import make_submission


def graded_in(enrollment, challenge, seconds: float, *, hours_ago: float = 0) -> Submission:
    end = timezone.now() - timedelta(hours=hours_ago, seconds=1)
    submission = make_submission(
        enrollment,
        challenge,
        status=Submission.Status.GRADED,
        score=1.0,
        passed=False,
        started_at=end - timedelta(seconds=seconds),
        finished_at=end,
        attempts=1,
    )
    GradingRun.objects.create(
        submission=submission,
        attempt=1,
        started_at=end - timedelta(seconds=seconds),
        finished_at=end,
        outcome=GradingRun.Outcome.GRADED,
    )
    return submission


def test_the_admin_lists_each_uploads_grading_seconds(client, staff, enrollment, challenge):
    graded_in(enrollment, challenge, 12.34)
    make_submission(enrollment, challenge)  # queued: no grading yet
    client.force_login(staff)

    page = client.get("/admin/submissions/submission/").content.decode()

    assert "grading seconds" in page.lower()
    assert "12.3" in page
    # Sorted by it, too.
    assert client.get("/admin/submissions/submission/", {"o": "10"}).status_code == 200


def test_the_grade_book_totals_each_students_grading_seconds(
    client, staff, enrollment, other_student, semester, challenge
):
    graded_in(enrollment, challenge, 10)
    graded_in(enrollment, challenge, 20.4)
    other = Enrollment.objects.get(user=other_student, semester=semester)
    graded_in(other, challenge, 3)

    totals = grading_seconds_by_username(challenge)
    assert {name: round(seconds, 1) for name, seconds in totals.items()} == {
        "student": 30.4,
        "other": 3.0,
    }
    client.force_login(staff)
    page = client.get(f"/challenges/{challenge.slug}/staff/").content.decode()

    assert "Grading seconds" in page
    assert '<td class="num grading-seconds">30</td>' in page
    assert '<td class="num grading-seconds">3</td>' in page


def test_the_health_page_shows_compute_per_hour_with_a_table(client, staff, enrollment, challenge):
    graded_in(enrollment, challenge, 40, hours_ago=0)
    graded_in(enrollment, challenge, 20, hours_ago=0)
    graded_in(enrollment, challenge, 15, hours_ago=5)
    graded_in(enrollment, challenge, 99, hours_ago=30)  # older than the chart

    compute = compute_per_hour()
    assert len(compute.hours) == 24
    [row] = compute.rows
    assert (row.challenge, row.total_jobs, round(row.total_seconds)) == (challenge.slug, 3, 75)
    assert (row.jobs[-1], round(row.seconds[-1])) == (2, 60)
    client.force_login(staff)
    page = client.get("/staff/health/").content.decode()

    assert "Grading compute, last 24 hours" in page
    assert f'<tr data-challenge="{challenge.slug}"><td>{challenge.slug}</td>' in page
    assert 'class="num">3</td><td class="num">75</td>' in page
    assert '<img src="/staff/health/compute.svg"' in page and "alt=" in page
    chart = client.get("/staff/health/compute.svg")
    assert chart["Content-Type"] == "image/svg+xml"
    assert b"<svg" in chart.content and b"grading seconds per hour" in chart.content


def test_the_chart_says_when_nothing_was_graded(client, staff):
    client.force_login(staff)

    chart = client.get("/staff/health/compute.svg").content

    assert b"No grading finished in the last 24 hours." in chart


def test_the_compute_chart_is_for_staff_only(client, student):
    client.force_login(student)

    assert client.get("/staff/health/compute.svg").status_code == 404


def test_a_student_sees_how_long_their_grading_took_coarsely(
    client, student, enrollment, challenge
):
    submission = graded_in(enrollment, challenge, 123.4)
    client.force_login(student)

    page = client.get(f"/submissions/{submission.pk}/").content.decode()

    assert "Grading took" in page
    assert "about 120 seconds" in page
    assert "123.4" not in page
