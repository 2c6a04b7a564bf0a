"""When final results come out: by themselves only when the last personal window (extension,
late days) has closed; earlier by staff only after a page naming who may still upload, and
those students keep seeing the public phase until their own window closes. Everything a
student sees of a result, an earlier one replaced by a re-grade included, follows that rule.

Asserted by value: no figure of the private part or of the whole set may appear, under any key
or in any format, in what a student whose window is open gets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from courses.models import Challenge, Enrollment, Extension
from submissions.models import GradingRun, RegradeBatch, Submission
from submissions.policies import (
    final_results_at,
    results_revealed,
    results_revealed_for,
    windows_closing,
)
from tests.platform import leaks
from tests.platform.conftest import make_challenge, make_submission, model_upload
from tests.platform.leaks import split_metrics

DAY = timedelta(days=1)

#: the parts' scores: the public leader is last in private
PUBLIC, PRIVATE = 300.0, 37.5


def split_graded(enrollment: Enrollment, challenge: Challenge, at, public=PUBLIC, private=PRIVATE):
    metrics = split_metrics(public, private)
    score = float(metrics["score"])  # type: ignore[arg-type]
    return make_submission(
        enrollment,
        challenge,
        created_at=at,
        status=Submission.Status.GRADED,
        score=score,
        passed=score >= challenge.threshold,
        metrics=metrics,
    )


def assert_hidden(text: str, public: float = PUBLIC, private: float = PRIVATE) -> None:
    leaks.assert_hidden(text, public, private)


@pytest.fixture
def late_class(challenge, semester, enrollment, other_student):
    """A 50/50 split whose deadline passed two hours ago, in a semester with two late days:
    ``student`` may still upload; ``other`` spent both late days on an earlier challenge."""
    semester.late_days = 2
    semester.save()
    now = timezone.now()
    challenge.public_fraction = 0.5
    challenge.threshold = 100.0
    challenge.deadline = now - timedelta(hours=2)
    challenge.save()
    other = other_student.enrollments.get()
    earlier = make_challenge(semester, slug="earlier", deadline=now - 10 * DAY)
    make_submission(other, earlier, created_at=earlier.deadline + timedelta(days=1, hours=1))
    return challenge, enrollment, other


# --- when final results come out ------------------------------------------------------------


def test_it_waits_for_the_last_personal_window(late_class):
    challenge, mine, other = late_class

    closing = windows_closing(challenge)

    assert closing[mine.pk] == challenge.deadline + 2 * DAY
    assert closing[other.pk] == challenge.deadline  # no late day left
    assert final_results_at(challenge) == challenge.deadline + 2 * DAY
    assert not results_revealed(challenge, challenge.deadline + 2 * DAY - timedelta(seconds=1))
    assert results_revealed(challenge, challenge.deadline + 2 * DAY)


def test_it_counts_extensions_the_cap_and_nobody_but_students(late_class, semester, ta):
    challenge, mine, other = late_class
    challenge.late_days_allowed = 1
    challenge.save()
    # An extension moves the window; late days still add to it, within the challenge's cap.
    Extension.objects.create(
        enrollment=other, challenge=challenge, deadline=challenge.deadline + 3 * DAY
    )

    closing = windows_closing(challenge)

    assert closing[mine.pk] == challenge.deadline + 1 * DAY
    assert closing[other.pk] == challenge.deadline + 3 * DAY  # no late day left to add
    assert len(closing) == 2  # the TA has no window
    assert final_results_at(challenge) == challenge.deadline + 3 * DAY


def test_it_reveals_nothing_by_itself_while_results_are_held(late_class):
    challenge, *_ = late_class
    challenge.hold_results = True
    challenge.save()

    assert final_results_at(challenge) is None
    assert not results_revealed(challenge, challenge.deadline + 30 * DAY)


def test_a_late_student_never_sees_a_private_score(
    client, token, student, late_class, tiny_models, django_capture_on_commit_callbacks
):
    """The reviewers' case: two hours after the deadline a student with late days uploads and
    reads their result, the board and the challenge page."""
    challenge, mine, other = late_class
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    # Still allowed to upload (it spends a late day).
    with django_capture_on_commit_callbacks(execute=False):
        upload = client.post(
            f"/api/challenges/{challenge.slug}/submissions/",
            {"file": model_upload(tiny_models.zeros)},
            **auth,
        )
    assert upload.status_code == 201
    late = split_graded(mine, challenge, timezone.now() - timedelta(minutes=30))
    split_graded(other, challenge, challenge.deadline - timedelta(hours=1), 120.0, 250.0)
    client.force_login(student)

    result = client.get(f"/api/submissions/{late.pk}/", **auth).json()
    page = client.get(f"/submissions/{late.pk}/").content.decode()
    board = client.get(reverse("challenge_leaderboard", args=[challenge.slug])).content.decode()
    api_board = client.get(f"/api/challenges/{challenge.slug}/leaderboard/", **auth).content
    listing = client.get("/submissions/").content.decode()
    challenge_page = client.get(reverse("challenge_detail", args=[challenge.slug])).content

    assert result["score"] == result["public_score"] == PUBLIC
    assert result["private_score"] is None
    for text in (repr(result), page, board, api_board.decode(), listing):
        assert_hidden(text)
    # The public board: the public leader first, and what the class will see later is not here.
    assert board.index(mine.handle) < board.index(other.handle)
    assert_hidden(board, 120.0, 250.0)
    # The challenge page says when final results appear (the end of the last window).
    assert "Final results" in challenge_page.decode()
    assert b"final-results" in challenge_page


def test_final_results_appear_for_everyone_once_the_last_window_closed(
    client, token, student, late_class
):
    challenge, mine, _ = late_class
    late = split_graded(mine, challenge, timezone.now() - timedelta(minutes=30))
    # Two days and two hours later every window has closed.
    challenge.deadline -= 2 * DAY + timedelta(minutes=1)
    challenge.save()

    result = client.get(f"/api/submissions/{late.pk}/", HTTP_AUTHORIZATION=f"Token {token}").json()

    assert result["score"] == result["private_score"] == PRIVATE
    assert result["public_score"] == PUBLIC


# --- revealing early --------------------------------------------------------------------------


def test_staff_confirm_an_early_reveal_that_names_who_may_still_upload(
    client, staff, token, student, late_class
):
    challenge, mine, other = late_class
    split_graded(mine, challenge, challenge.deadline - timedelta(hours=1))
    theirs = split_graded(other, challenge, challenge.deadline - timedelta(hours=1), 120.0, 250.0)
    client.force_login(staff)
    url = reverse("admin:courses_challenge_reveal", args=[challenge.pk])

    asked = client.post(url)

    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Reveal final results early?" in page
    assert 'value="Yes, reveal final results now"' in page and 'name="post" value="yes"' in page
    assert mine.handle in page and "student" in page
    assert other.handle not in page  # their window has closed
    challenge.refresh_from_db()
    assert challenge.revealed_at is None  # nothing changed yet

    done = client.post(url, {"post": "yes"})

    assert done.status_code == 302
    challenge.refresh_from_db()
    assert challenge.revealed_at is not None
    # The class sees final results; the student who may still upload does not, for their own.
    assert results_revealed_for(challenge, other)
    assert not results_revealed_for(challenge, mine)
    client.force_login(student)
    mine_result = client.get(
        f"/api/submissions/{Submission.objects.get(enrollment=mine).pk}/",
        HTTP_AUTHORIZATION=f"Token {token}",
    ).json()
    board = client.get(reverse("challenge_leaderboard", args=[challenge.slug])).content.decode()
    assert mine_result["score"] == PUBLIC and mine_result["private_score"] is None
    assert_hidden(repr(mine_result) + board)
    assert_hidden(board, 120.0, 250.0)
    # Everyone else (a visitor here) sees the final board.
    client.logout()
    final = client.get(reverse("challenge_leaderboard", args=[challenge.slug])).content.decode()
    assert final.index(other.handle) < final.index(mine.handle)
    assert f"{theirs.metrics['private']['score']:.2f}" in final


def test_staff_reveal_at_once_when_every_window_has_closed(client, staff, late_class):
    challenge, *_ = late_class
    challenge.deadline -= 3 * DAY
    challenge.hold_results = True
    challenge.save()
    client.force_login(staff)

    response = client.post(reverse("admin:courses_challenge_reveal", args=[challenge.pk]))

    assert response.status_code == 302
    challenge.refresh_from_db()
    assert challenge.revealed_at is not None


def test_the_changelist_action_asks_first_too(client, staff, late_class):
    challenge, *_ = late_class
    client.force_login(staff)
    changelist = reverse("admin:courses_challenge_changelist")
    action = {"action": "reveal_results", "_selected_action": [challenge.pk]}

    asked = client.post(changelist, action)
    assert asked.status_code == 200 and "may still upload" in asked.content.decode()
    challenge.refresh_from_db()
    assert challenge.revealed_at is None

    client.post(changelist, {**action, "post": "yes"})
    challenge.refresh_from_db()
    assert challenge.revealed_at is not None


# --- an earlier result, replaced by a re-grade ------------------------------------------------


def test_a_published_regrade_shows_the_earlier_result_by_the_same_rule(
    client, student, enrollment, challenge, staff
):
    challenge.public_fraction = 0.5
    challenge.threshold = 100.0
    challenge.save()
    at = timezone.now() - timedelta(hours=1)
    submission = split_graded(enrollment, challenge, at)
    GradingRun.objects.create(
        submission=submission,
        attempt=1,
        outcome=GradingRun.Outcome.GRADED,
        score=submission.score,
        passed=submission.passed,
        metrics=submission.metrics,
        started_at=at,
        finished_at=at,
    )
    batch = RegradeBatch.objects.create(
        challenge=challenge,
        reason="new labels",
        status=RegradeBatch.Status.PUBLISHED,
        total=1,
        threshold=challenge.threshold,
        score_key=challenge.score_key,
        published_at=timezone.now(),
    )
    new = split_metrics(200.0, 80.0)
    GradingRun.objects.create(
        submission=submission,
        attempt=2,
        batch=batch,
        outcome=GradingRun.Outcome.GRADED,
        score=new["score"],
        passed=True,
        metrics=new,
        previous_score=submission.score,
        previous_passed=submission.passed,
        finished_at=timezone.now(),
    )
    Submission.objects.filter(pk=submission.pk).update(score=new["score"], metrics=new)
    client.force_login(student)

    page = client.get(f"/submissions/{submission.pk}/").content.decode()

    assert "the course staff graded this upload again" in page
    assert f"before, it had a score of {PUBLIC:.2f} (passed)" in page
    assert_hidden(page)  # the earlier whole-set score (66.67) above all
    assert_hidden(page, 200.0, 80.0)
