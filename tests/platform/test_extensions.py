"""Extensions and late days: a student's own deadline and quota, to the second in the course's
timezone, late days spent by the first late upload of each day, capped per challenge, and what
the challenge page and the grade book show."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from courses.models import Extension
from leaderboard.boards import gradebook_rows
from submissions.policies import days_late, late_days_spent, window_for
from submissions.services import SubmissionRefused, submission_check_window
from tests.platform.conftest import make_challenge, make_submission

BERLIN = ZoneInfo("Europe/Berlin")
#: 23:59:59 in Berlin on a summer day: 21:59:59 UTC
DEADLINE = datetime(2027, 7, 1, 23, 59, 59, tzinfo=BERLIN)
#: the extension: three days later, 12:00:00 in Berlin
EXTENDED = datetime(2027, 7, 4, 12, 0, 0, tzinfo=BERLIN)


@pytest.fixture
def fixed(challenge):
    challenge.deadline = DEADLINE
    challenge.daily_quota = 2
    challenge.save()
    return challenge


def refused(enrollment, challenge, at) -> str | None:
    try:
        submission_check_window(enrollment, challenge, at)
    except SubmissionRefused as exc:
        return exc.code
    return None


def test_it_closes_at_the_course_deadline_to_the_second(enrollment, fixed):
    assert refused(enrollment, fixed, DEADLINE - timedelta(seconds=1)) is None
    assert refused(enrollment, fixed, DEADLINE) == "deadline"
    assert DEADLINE.astimezone(ZoneInfo("UTC")).hour == 21


def test_it_lets_a_student_with_an_extension_upload_until_their_deadline(
    enrollment, other_student, fixed
):
    Extension.objects.create(enrollment=enrollment, challenge=fixed, deadline=EXTENDED)
    other = other_student.enrollments.get()

    assert refused(enrollment, fixed, EXTENDED - timedelta(seconds=1)) is None
    assert refused(enrollment, fixed, EXTENDED) == "deadline"
    # Everyone else: the challenge's deadline, as before.
    assert refused(other, fixed, DEADLINE) == "deadline"


def test_it_adds_extra_uploads_until_the_extension_ends(enrollment, fixed):
    Extension.objects.create(
        enrollment=enrollment, challenge=fixed, deadline=EXTENDED, extra_uploads=1
    )
    at = EXTENDED - timedelta(hours=2)
    for minutes in (30, 20):
        make_submission(enrollment, fixed, created_at=at - timedelta(minutes=minutes))
    assert refused(enrollment, fixed, at) is None  # 2 used of 2 + 1
    make_submission(enrollment, fixed, created_at=at - timedelta(minutes=10))

    assert refused(enrollment, fixed, at) == "quota"
    assert window_for(enrollment, fixed, at).quota == 3


def test_it_counts_whole_days_past_the_deadline():
    assert days_late(DEADLINE, DEADLINE - timedelta(seconds=1)) == 0
    assert days_late(DEADLINE, DEADLINE) == 1
    assert days_late(DEADLINE, DEADLINE + timedelta(days=1)) == 1
    assert days_late(DEADLINE, DEADLINE + timedelta(days=1, seconds=1)) == 2


def test_it_spends_late_days_from_the_semesters_budget(enrollment, semester, fixed):
    semester.late_days = 3
    semester.save()
    second = make_challenge(semester, slug="second", deadline=DEADLINE + timedelta(days=10))
    # Day 1 late, twice: one day spent.
    for hours in (1, 5):
        at = DEADLINE + timedelta(hours=hours)
        assert refused(enrollment, fixed, at) is None
        make_submission(enrollment, fixed, created_at=at)
    assert late_days_spent(enrollment) == {fixed.pk: 1}
    # Day 2 late spends a second.
    at = DEADLINE + timedelta(days=1, hours=1)
    assert refused(enrollment, fixed, at) is None
    make_submission(enrollment, fixed, created_at=at)
    assert late_days_spent(enrollment) == {fixed.pk: 2}
    # One day left for the second challenge: its day 2 is refused, its day 1 is not.
    assert refused(enrollment, second, second.deadline + timedelta(days=1, hours=1)) == "deadline"
    assert refused(enrollment, second, second.deadline + timedelta(hours=23)) is None
    book = {row.username: row.late_days for row in gradebook_rows(fixed)}
    assert book == {"student": 2}


def test_it_caps_late_days_per_challenge(enrollment, semester, fixed):
    semester.late_days = 5
    semester.save()
    fixed.late_days_allowed = 1
    fixed.save()

    assert refused(enrollment, fixed, DEADLINE + timedelta(hours=23)) is None
    assert refused(enrollment, fixed, DEADLINE + timedelta(days=1, hours=1)) == "deadline"


def test_it_shows_the_student_their_deadline_quota_and_late_days(
    client, student, enrollment, semester, challenge
):
    semester.late_days = 2
    semester.save()
    Extension.objects.create(
        enrollment=enrollment,
        challenge=challenge,
        deadline=challenge.deadline + timedelta(days=2),
        extra_uploads=2,
        reason="medical certificate",
    )
    client.force_login(student)

    page = client.get(reverse("challenge_detail", args=[challenge.slug])).content.decode()

    assert "Your deadline" in page
    assert "2 extra uploads a day" in page
    assert "5 of 5 uploads left" in page
    assert "2 of 2 left this semester" in page
    assert "medical certificate" not in page


def test_it_refuses_an_extension_for_another_semester(enrollment, earlier_semester):
    from django.core.exceptions import ValidationError

    old = make_challenge(earlier_semester, slug="old")
    extension = Extension(enrollment=enrollment, challenge=old, deadline=DEADLINE)

    with pytest.raises(ValidationError):
        extension.full_clean()


def test_it_shows_late_days_left_on_the_course_page(client, student, enrollment, semester, fixed):
    semester.late_days = 3
    semester.save()
    make_submission(enrollment, fixed, created_at=DEADLINE + timedelta(hours=30))
    client.force_login(student)

    page = client.get(reverse("course_detail", args=[semester.course.slug])).content.decode()

    assert "Late days: 1 of 3 left this semester." in page
