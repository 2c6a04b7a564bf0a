"""The ranking rules of ``leaderboard_build``: honest ranks, infinities, what never ranks."""

from __future__ import annotations

import math

import pytest

from courses.models import Enrollment
from leaderboard.boards import leaderboard_build, leaderboard_rows
from submissions.models import Submission
from tests.platform.conftest import graded, make_challenge, make_submission, make_user


@pytest.fixture
def students(semester):
    def students(count: int) -> list[Enrollment]:
        return [
            Enrollment.objects.create(user=make_user(f"r{i}"), semester=semester)
            for i in range(count)
        ]

    return students


def test_it_gives_equal_scores_the_same_rank_and_lists_the_earlier_first(challenge, students):
    first, late_tie, early_tie, last = students(4)
    graded(first, challenge, 300.0)
    graded(late_tie, challenge, 200.0, minutes_ago=5)
    graded(early_tie, challenge, 200.0, minutes_ago=50)
    graded(last, challenge, 100.0)

    rows = leaderboard_rows(challenge)

    assert [(r.rank, r.handle) for r in rows] == [
        (1, first.handle),
        (2, early_tie.handle),
        (2, late_tie.handle),
        (4, last.handle),
    ]


def test_it_ranks_infinite_scores_first_and_ties_them(challenge, students):
    finite, late_perfect, early_perfect = students(3)
    graded(finite, challenge, 1e300)
    graded(late_perfect, challenge, math.inf, minutes_ago=1)
    graded(early_perfect, challenge, math.inf, minutes_ago=10)

    rows = leaderboard_rows(challenge)

    assert [(r.rank, r.handle) for r in rows] == [
        (1, early_perfect.handle),
        (1, late_perfect.handle),
        (3, finite.handle),
    ]


def test_it_never_ranks_failed_or_scoreless_submissions(challenge, students):
    failed_only, nan_then_good, unscored = students(3)
    make_submission(failed_only, challenge, status=Submission.Status.FAILED, error="shape")
    # A NaN must neither rank nor hide the student's real best (PostgreSQL sorts NaN above inf).
    make_submission(
        nan_then_good, challenge, status=Submission.Status.GRADED, score=math.nan, passed=False
    )
    graded(nan_then_good, challenge, 42.0)
    make_submission(unscored, challenge, status=Submission.Status.GRADED, score=None)

    board = leaderboard_build(challenge)

    assert [(r.handle, r.score) for r in board.rows] == [(nan_then_good.handle, 42.0)]
    assert board.unranked == 2


def test_it_ranks_the_best_of_many_and_tells_its_time(challenge, students):
    (student,) = students(1)
    graded(student, challenge, 10.0, minutes_ago=30)
    best = graded(student, challenge, 90.0, minutes_ago=20)
    graded(student, challenge, 90.0, minutes_ago=10)  # equal, later: not the best one
    graded(student, challenge, 50.0, minutes_ago=5)

    (row,) = leaderboard_rows(challenge)

    assert (row.score, row.submission_id, row.submitted_at) == (90.0, best.id, best.created_at)
    assert row.submissions == 4


def test_it_keeps_each_semester_to_its_own_board(challenge, students, earlier_semester):
    (current,) = students(1)
    old_challenge = make_challenge(earlier_semester, slug="old-keypoints")
    old = Enrollment.objects.create(user=current.user, semester=earlier_semester)
    graded(old, old_challenge, 999.0)
    graded(current, challenge, 1.0)

    assert [(r.handle, r.score) for r in leaderboard_rows(challenge)] == [(current.handle, 1.0)]
    assert [r.handle for r in leaderboard_rows(old_challenge)] == [old.handle]
    assert leaderboard_build(old_challenge).enrolled == 1


def test_it_ranks_segmentation_by_the_recorded_score(semester, students):
    segmentation = make_challenge(
        semester, slug="seg", task="segmentation", threshold=0.5, ranked_by="pooled_accuracy"
    )
    low, high = students(2)
    # The worker records the pooled accuracy as the score when the challenge ranks by it.
    for enrollment, score in [(low, 0.61), (high, 0.72)]:
        make_submission(
            enrollment,
            segmentation,
            status=Submission.Status.GRADED,
            score=score,
            passed=True,
            metrics={"accuracy": 0.9, "pooled_accuracy": score},
        )

    assert [r.handle for r in leaderboard_rows(segmentation)] == [high.handle, low.handle]
