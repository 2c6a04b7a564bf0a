"""Public and private scores: one grading stores the whole set and both parts; before the
reveal students, boards and the API see the public part only, after it the private part ranks
and passes, and rows say how many places each student moved."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from courses.models import Enrollment
from leaderboard.boards import board_version, gradebook_rows, leaderboard_build
from submissions.models import Submission
from submissions.results import submission_notify
from submissions.standings import challenge_reveal, challenge_rules_changed, standings_check
from tests.platform.conftest import make_submission, make_user
from tests.platform.leaks import assert_hidden, split_metrics
from worker.tasks import grade_submission


@pytest.fixture
def split(challenge):
    challenge.public_fraction = 0.5
    challenge.threshold = 100.0
    challenge.save()
    return challenge


#: the three students' (public, private) scores
PARTS = [(300.0, 50.0), (200.0, 150.0), (120.0, 250.0)]


def split_graded(enrollment, challenge, public: float, private: float, minutes_ago=60):
    """A result with both parts; the whole set's score is the count-weighted one."""
    metrics = split_metrics(public, private)
    whole = metrics["score"]
    return make_submission(
        enrollment,
        challenge,
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
        status=Submission.Status.GRADED,
        score=whole,
        passed=whole >= challenge.threshold,
        metrics=metrics,
    )


@pytest.fixture
def field(split, semester, enrollment):
    """Three students: the public leader falls to last in private."""
    a = enrollment
    b = Enrollment.objects.create(user=make_user("b"), semester=semester)
    c = Enrollment.objects.create(user=make_user("c"), semester=semester)
    split_graded(a, split, public=300.0, private=50.0)
    split_graded(b, split, public=200.0, private=150.0)
    split_graded(c, split, public=120.0, private=250.0)
    return a, b, c


def board(challenge):
    return [
        (row.handle, row.score, row.passed, row.public_score, row.moved)
        for row in leaderboard_build(challenge).rows
    ]


def test_it_ranks_by_the_public_part_before_the_deadline(client, split, field):
    a, b, c = field

    assert board(split) == [
        (a.handle, 300.0, True, None, None),
        (b.handle, 200.0, True, None, None),
        (c.handle, 120.0, True, None, None),
    ]
    # By value: nothing of a private part or a whole set, whatever its name, on the board, in
    # the API's board or in the histogram.
    shown = "".join(
        client.get(url).content.decode()
        for url in (
            reverse("challenge_leaderboard", args=[split.slug]),
            f"/api/challenges/{split.slug}/leaderboard/",
            reverse("challenge_histogram", args=[split.slug]),
        )
    )
    for public, private in PARTS:
        assert_hidden(shown, public, private)


def test_it_ranks_by_the_private_part_after_the_deadline(split, field):
    a, b, c = field
    split.deadline = timezone.now() - timedelta(seconds=1)
    split.save()

    assert board(split) == [
        (c.handle, 250.0, True, 120.0, 2),
        (b.handle, 150.0, True, 200.0, 0),
        (a.handle, 50.0, False, 300.0, -2),
    ]
    book = {row.username: (row.rank, row.best_score, row.passed) for row in gradebook_rows(split)}
    assert book == {"student": (3, 50.0, False), "b": (2, 150.0, True), "c": (1, 250.0, True)}


def test_it_reveals_early_when_staff_press_the_button(client, staff, split, field):
    version = board_version(split)
    assert board(split)[0][0] == field[0].handle
    client.force_login(staff)

    # Every student may still upload: the confirmation names them, then it reveals.
    asked = client.post(reverse("admin:courses_challenge_reveal", args=[split.pk]))
    assert asked.status_code == 200 and field[0].handle in asked.content.decode()
    response = client.post(
        reverse("admin:courses_challenge_reveal", args=[split.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    split.refresh_from_db()
    assert split.revealed_at is not None
    assert board_version(split) != version
    assert board(split)[0][0] == field[2].handle
    page = client.get(reverse("challenge_leaderboard", args=[split.slug])).content.decode()
    assert "Final results" in page and "▲ 2" in page and "▼ 2" in page


def test_it_holds_results_after_the_deadline_until_revealed(split, field):
    split.hold_results = True
    split.deadline = timezone.now() - timedelta(seconds=1)
    split.save()
    assert board(split)[0][0] == field[0].handle

    challenge_reveal(split)

    assert board(split)[0][0] == field[2].handle


def test_it_shows_the_public_score_only_through_the_api(client, token, split, field):
    mine = Submission.objects.get(enrollment=field[0])
    url = f"/api/submissions/{mine.pk}/"
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}

    answer = client.get(url, **auth)
    before = answer.json()
    assert_hidden(answer.content.decode(), 300.0, 50.0)
    assert before["score"] == before["public_score"] == 300.0
    assert before["private_score"] is None
    assert before["metrics"]["public_count"] + before["metrics"]["private_count"] == 8
    assert "private" not in before["metrics"]
    assert before["metrics"]["mse"] == pytest.approx(1 / 600)  # the public part's

    # Final results once the last window has closed (no late days: at the deadline).
    split.deadline = timezone.now() - timedelta(seconds=1)
    split.save()
    after = client.get(url, **auth).json()
    assert after["score"] == after["private_score"] == 50.0
    assert after["public_score"] == 300.0
    assert after["passed"] is False
    assert after["metrics"]["private"]["score"] == 50.0
    assert after["metrics"]["score"] == mine.score  # the whole set's stays stored


def test_it_shows_the_public_score_on_the_result_and_list_pages(client, student, split, field):
    mine = Submission.objects.get(enrollment=field[0])
    client.force_login(student)

    page = client.get(f"/submissions/{mine.pk}/").content.decode()
    listing = client.get("/submissions/").content.decode()

    assert "300.00" in page and "300.00" in listing
    assert "public part of the test set" in page
    assert_hidden(page + listing, 300.0, 50.0)


def test_it_emails_the_public_part_only(split, field):
    mine = Submission.objects.get(enrollment=field[0])

    submission_notify(mine)

    (email,) = mail.outbox
    assert "300.00" in email.subject and "300.00" in email.body
    assert_hidden(email.subject + email.body, 300.0, 50.0)


def test_it_recomputes_standings_when_the_split_is_turned_on(challenge, enrollment):
    split_graded(enrollment, challenge, public=300.0, private=50.0)
    whole = Submission.objects.get().score
    assert board(challenge)[0][1] == whole  # no split yet: the whole set ranks

    challenge.public_fraction = 0.5
    challenge.save()
    assert challenge_rules_changed(challenge) == 1

    assert board(challenge)[0][1] == 300.0
    assert standings_check(challenge) == []


# --- grading with a split, through the real task ----------------------------------------------


@pytest.mark.usefixtures("fresh_runners")
def test_it_grades_the_whole_set_and_both_parts_in_one_pass(
    split, enrollment, tiny_models, expected_zero_mse, data_root, django_capture_on_commit_callbacks
):
    import eval_data
    from grader.split import public_split

    submission = make_submission(enrollment, split, content=tiny_models.zeros_bytes())

    with django_capture_on_commit_callbacks(execute=True):
        grade_submission.run(str(submission.pk))

    submission.refresh_from_db()
    metrics = submission.metrics
    assert submission.status == Submission.Status.GRADED
    assert metrics["mse"] == pytest.approx(expected_zero_mse, rel=1e-6)
    assert metrics["public_count"] + metrics["private_count"] == metrics["count"] == 8
    # The same split an independent reader of the data computes; the parts' MSEs from the labels.
    dataset = eval_data.load(data_root / split.data_dir, "keypoints")
    parts = public_split(dataset, 0.5)
    assert metrics["split_seed"] == dataset.dataset_hash[:16]
    labels = dataset.labels.reshape(len(dataset), -1).astype("float64")
    for name, rows in (("public", parts.public), ("private", parts.private)):
        assert metrics[name]["mse"] == pytest.approx(float((labels[rows] ** 2).mean()), rel=1e-6)
    weighted = (
        metrics["public"]["mse"] * metrics["public_count"]
        + metrics["private"]["mse"] * metrics["private_count"]
    ) / metrics["count"]
    assert metrics["mse"] == pytest.approx(weighted, rel=1e-9)
    assert leaderboard_build(split).rows[0].score == pytest.approx(metrics["public"]["score"])


def test_it_judges_the_pass_list_on_the_private_part_after_the_reveal(client, staff, split, field):
    client.force_login(staff)
    url = reverse("challenge_passes_csv", args=[split.slug])
    handle = field[0].handle

    before = client.get(url).content.decode()
    assert f"student,student@example.com,{handle},300.0,yes," in before
    challenge_reveal(split)
    after = client.get(url).content.decode()
    assert f"student,student@example.com,{handle},50.0,no," in after


def test_it_publishes_a_regrade_into_both_parts(split, field, staff):
    from submissions.models import GradingRun, RegradeBatch
    from submissions.regrade.batches import regrade_batch_publish

    a, b, c = field
    batch = RegradeBatch.objects.create(
        challenge=split,
        reason="new labels",
        status=RegradeBatch.Status.COMPLETE,
        total=1,
        threshold=split.threshold,
        score_key=split.score_key,
    )
    mine = Submission.objects.get(enrollment=a)
    regraded = split_graded(a, split, public=100.0, private=400.0)
    GradingRun.objects.create(
        submission=mine,
        attempt=2,
        batch=batch,
        outcome=GradingRun.Outcome.GRADED,
        score=regraded.score,
        passed=True,
        metrics=regraded.metrics,
        finished_at=timezone.now(),
    )
    regraded.delete()

    assert regrade_batch_publish(batch, staff) == 1

    assert [row[0] for row in board(split)] == [b.handle, c.handle, a.handle]  # public
    challenge_reveal(split)
    assert board(split)[0][:2] == (a.handle, 400.0)
    assert standings_check(split) == []
