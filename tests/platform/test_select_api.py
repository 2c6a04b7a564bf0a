"""Marking uploads that count: ``POST`` / ``DELETE /api/submissions/<id>/select/`` and the
result page's button."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from courses.models import Challenge, Extension
from leaderboard.boards import leaderboard_build
from submissions.models import Submission
from tests.platform.conftest import graded, make_submission


@pytest.fixture
def selecting(challenge):
    challenge.scoring = Challenge.Scoring.SELECTED
    challenge.max_selected = 2
    challenge.save()
    return challenge


def auth(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Token {token}"}


def select(client, token, submission, method="post"):
    call = getattr(client, method)
    return call(f"/api/submissions/{submission.pk}/select/", **auth(token))


def test_it_marks_and_unmarks_an_upload(client, token, enrollment, selecting):
    good = graded(enrollment, selecting, 300.0)
    low = graded(enrollment, selecting, 20.0)

    response = select(client, token, low)

    assert response.status_code == 200
    assert response.json()["selected"] is True
    assert response.json()["counted"] is True
    assert leaderboard_build(selecting).rows[0].submission_id == low.pk
    response = select(client, token, low, "delete")
    assert response.status_code == 204
    low.refresh_from_db()
    assert low.selected is False
    assert leaderboard_build(selecting).rows[0].submission_id == good.pk


def test_it_answers_409_when_the_challenge_does_not_use_selection(
    client, token, enrollment, challenge
):
    response = select(client, token, graded(enrollment, challenge, 3.0))

    assert response.status_code == 409
    assert response.json()["code"] == "not_selectable"


def test_it_answers_409_past_max_selected(client, token, enrollment, selecting):
    first, second, third = (graded(enrollment, selecting, s) for s in (1.0, 2.0, 3.0))
    assert select(client, token, first).status_code == 200
    assert select(client, token, second).status_code == 200

    response = select(client, token, third)

    assert response.status_code == 409
    assert response.json()["code"] == "too_many_selected"
    # Selecting one already selected again is no new mark.
    assert select(client, token, second).status_code == 200


def test_it_answers_400_for_a_failed_upload(client, token, enrollment, selecting):
    failed = make_submission(enrollment, selecting, status=Submission.Status.FAILED, error="x")

    response = select(client, token, failed)

    assert response.status_code == 400
    assert response.json()["code"] == "not_graded"


def test_it_answers_404_for_someone_elses_upload(client, token, semester, selecting, other_student):
    theirs = graded(other_student.enrollments.get(), selecting, 5.0)

    assert select(client, token, theirs).status_code == 404
    assert select(client, token, theirs, "delete").status_code == 404


def test_it_closes_marking_with_the_deadline_unless_extended(client, token, enrollment, selecting):
    submission = graded(enrollment, selecting, 5.0)
    selecting.deadline = timezone.now() - timedelta(seconds=1)
    selecting.save()

    response = select(client, token, submission)
    assert response.status_code == 409
    assert response.json()["code"] == "deadline"

    Extension.objects.create(
        enrollment=enrollment, challenge=selecting, deadline=timezone.now() + timedelta(hours=1)
    )
    assert select(client, token, submission).status_code == 200


def test_it_marks_from_the_result_page(client, student, enrollment, selecting):
    submission = graded(enrollment, selecting, 5.0)
    client.force_login(student)
    page = client.get(f"/submissions/{submission.pk}/").content.decode()
    assert "Select this upload" in page

    response = client.post(f"/submissions/{submission.pk}/select/", {"selected": "1"})

    assert response.status_code == 302
    submission.refresh_from_db()
    assert submission.selected is True
    page = client.get(f"/submissions/{submission.pk}/").content.decode()
    assert "Unselect" in page
    assert "counts on the leaderboard" in page


def test_it_needs_csrf_for_a_session_post(client, student, enrollment, selecting):
    from django.test import Client

    submission = graded(enrollment, selecting, 5.0)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(student)

    assert strict.post(f"/api/submissions/{submission.pk}/select/").status_code == 403
    assert (
        strict.post(f"/submissions/{submission.pk}/select/", {"selected": "1"}).status_code == 403
    )
