"""Which submission counts (best / last / selected), read everywhere from the standings: the
board, the grade book, passes.csv, the API, a policy change in the admin, a published re-grade
and the ``standings --check`` drift check."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from courses.models import Challenge, Enrollment
from leaderboard.boards import board_version, gradebook_rows, leaderboard_build
from submissions import lifecycle
from submissions.models import GradingRun, RegradeBatch, Standing, Submission
from submissions.policies import submission_select
from submissions.regrade.batches import regrade_batch_publish
from submissions.standings import challenge_rules_changed, standings_check
from tests.platform.conftest import graded, make_submission, make_user


@pytest.fixture
def history(enrollment, challenge):
    """The student's uploads: best 300 (oldest), then 50, then the latest 120; one failed."""
    best = graded(enrollment, challenge, 300.0, minutes_ago=300)
    low = graded(enrollment, challenge, 50.0, minutes_ago=200)
    latest = graded(enrollment, challenge, 120.0, minutes_ago=100)
    make_submission(enrollment, challenge, status=Submission.Status.FAILED, error="bad")
    return best, low, latest


def counted(challenge) -> tuple[float, object]:
    (row,) = leaderboard_build(challenge).rows
    return row.score, row.submission_id


def set_scoring(challenge: Challenge, scoring: str) -> None:
    challenge.scoring = scoring
    challenge.save()
    challenge_rules_changed(challenge)


def test_it_counts_the_best_graded_upload_by_default(challenge, history):
    best, _, _ = history

    assert counted(challenge) == (300.0, best.pk)


def test_it_counts_the_latest_graded_upload_even_when_worse(challenge, history):
    _, _, latest = history

    set_scoring(challenge, Challenge.Scoring.LAST)

    assert counted(challenge) == (120.0, latest.pk)
    assert standings_check(challenge) == []


def test_it_counts_the_best_selected_and_without_selection_the_best(challenge, history):
    best, low, latest = history
    set_scoring(challenge, Challenge.Scoring.SELECTED)
    assert counted(challenge) == (300.0, best.pk)  # none selected: the best of all

    submission_select(low, True)
    assert counted(challenge) == (50.0, low.pk)
    submission_select(latest, True)
    assert counted(challenge) == (120.0, latest.pk)
    submission_select(latest, False)
    assert counted(challenge) == (50.0, low.pk)
    assert standings_check(challenge) == []


def test_it_moves_the_board_version_on_a_selection_and_a_policy_change(challenge, history):
    _, low, _ = history
    version = board_version(challenge)
    set_scoring(challenge, Challenge.Scoring.SELECTED)
    assert board_version(challenge) != version

    version = board_version(challenge)
    submission_select(low, True)
    assert board_version(challenge) != version
    # The cached board follows at once, not after its minute.
    assert counted(challenge) == (50.0, low.pk)


def test_it_ranks_the_board_grade_book_and_csv_by_the_counted_upload(
    client, staff, challenge, semester, history
):
    rival = Enrollment.objects.create(user=make_user("rival"), semester=semester)
    graded(rival, challenge, 200.0, minutes_ago=10)
    set_scoring(challenge, Challenge.Scoring.LAST)

    board = [(row.handle, row.score) for row in leaderboard_build(challenge).rows]
    assert board == [(rival.handle, 200.0), (history[2].enrollment.handle, 120.0)]
    book = {row.username: (row.rank, row.best_score) for row in gradebook_rows(challenge)}
    assert book == {"rival": (1, 200.0), "student": (2, 120.0)}

    client.force_login(staff)
    csv = client.get(reverse("challenge_passes_csv", args=[challenge.slug])).content.decode()
    assert f"student,student@example.com,{history[2].enrollment.handle},120.0,yes,4," in csv
    api = client.get(reverse("api_leaderboard", args=[challenge.slug])).json()
    assert [row["score"] for row in api["rows"]] == [200.0, 120.0]


def test_it_tells_the_api_which_upload_counts(client, token, challenge, history):
    best, low, _ = history
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}

    assert client.get(f"/api/submissions/{best.pk}/", **auth).json()["counted"] is True
    assert client.get(f"/api/submissions/{low.pk}/", **auth).json()["counted"] is False
    rows = client.get("/api/challenges/", **auth).json()["challenges"]
    assert rows[0]["scoring"] == "best"


def test_it_finds_and_fixes_drift_under_every_policy(challenge, history):
    best, low, latest = history
    counts = {"best": best, "last": latest, "selected": low}
    for scoring, mine in counts.items():
        set_scoring(challenge, scoring)
        if scoring == Challenge.Scoring.SELECTED:
            submission_select(low, True)
        # A change that bypasses the standings: the check sees it, --fix repairs it.
        old = (mine.score, mine.metrics)
        Submission.objects.filter(pk=mine.pk).update(score=999.0, metrics={"score": 999.0})
        with pytest.raises(CommandError, match="1 standing"):
            call_command("standings", "--check", stdout=StringIO())
        call_command("standings", "--fix", stdout=StringIO())
        assert standings_check(challenge) == []
        assert counted(challenge) == (999.0, mine.pk)
        Submission.objects.filter(pk=mine.pk).update(score=old[0], metrics=old[1])
        call_command("standings", "--fix", stdout=StringIO())


def test_it_keeps_the_policy_through_a_published_regrade(challenge, history, staff):
    best, low, latest = history
    set_scoring(challenge, Challenge.Scoring.LAST)
    batch = RegradeBatch.objects.create(
        challenge=challenge,
        reason="new data",
        status=RegradeBatch.Status.COMPLETE,
        total=3,
        threshold=challenge.threshold,
        score_key=challenge.score_key,
    )
    # The re-grade lifts the oldest upload and lowers the latest: the latest still counts.
    for submission, score in ((best, 900.0), (low, 60.0), (latest, 20.0)):
        GradingRun.objects.create(
            submission=submission,
            attempt=2,
            batch=batch,
            outcome=GradingRun.Outcome.GRADED,
            score=score,
            passed=True,
            metrics={"score": score},
            finished_at=timezone.now(),
        )

    assert regrade_batch_publish(batch, staff) == 3

    assert counted(challenge) == (20.0, latest.pk)
    assert standings_check(challenge) == []


def test_it_counts_a_new_latest_result_recorded_by_a_worker(challenge, enrollment, history):
    set_scoring(challenge, Challenge.Scoring.LAST)
    queued = make_submission(
        enrollment, challenge, created_at=timezone.now() - timedelta(minutes=1)
    )
    claimed = lifecycle.claim(str(queued.pk))
    assert claimed is not None

    assert lifecycle.finish(claimed, score=10.0, passed=True, metrics={"score": 10.0})

    assert counted(challenge) == (10.0, queued.pk)
    standing = Standing.objects.get(enrollment=enrollment, challenge=challenge)
    assert standing.best_id == standing.final_best_id == queued.pk
