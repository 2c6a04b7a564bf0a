"""The ranking (``leaderboard_rows``) and the public leaderboard page."""

from __future__ import annotations

import math

import pytest
from django.utils import timezone

from courses.models import Enrollment
from leaderboard.boards import leaderboard_rows
from submissions.models import Submission
from tests.platform.conftest import graded, make_challenge, make_submission, make_user


@pytest.fixture
def students(semester):
    def students(count: int) -> list[Enrollment]:
        return [
            Enrollment.objects.create(user=make_user(f"s{i}"), semester=semester)
            for i in range(count)
        ]

    return students


def test_it_ranks_each_student_by_their_best_graded_submission(challenge, students):
    a, b = students(2)
    graded(a, challenge, 50.0)
    graded(a, challenge, 200.0)
    graded(b, challenge, 150.0)

    rows = leaderboard_rows(challenge)

    assert [(r.rank, r.handle, r.score, r.submissions) for r in rows] == [
        (1, a.handle, 200.0, 2),
        (2, b.handle, 150.0, 1),
    ]
    assert rows[0].headline["mse"] == pytest.approx(1 / 400)


def test_it_ranks_the_earlier_upload_first_on_a_tie(challenge, students):
    late, early = students(2)
    graded(late, challenge, 100.0, minutes_ago=5)
    graded(early, challenge, 100.0, minutes_ago=50)

    assert [r.handle for r in leaderboard_rows(challenge)] == [early.handle, late.handle]


def test_it_ranks_an_infinite_score_first(challenge, students):
    finite, perfect = students(2)
    graded(finite, challenge, 1e12)
    graded(perfect, challenge, math.inf)

    rows = leaderboard_rows(challenge)

    assert [r.handle for r in rows] == [perfect.handle, finite.handle]
    assert math.isinf(rows[0].score)


def test_it_leaves_out_unfinished_failed_and_ta_submissions(challenge, students, ta):
    (student,) = students(1)
    make_submission(student, challenge)  # queued
    make_submission(student, challenge, status=Submission.Status.FAILED, error="shape")
    graded(Enrollment.objects.get(user=ta), challenge, 999.0)

    assert leaderboard_rows(challenge) == []


def test_it_counts_uploads_but_not_platform_failures(challenge, students):
    (student,) = students(1)
    graded(student, challenge, 120.0)
    make_submission(student, challenge, status=Submission.Status.FAILED, error="shape")
    make_submission(student, challenge, status=Submission.Status.FAILED, counts_for_quota=False)

    assert leaderboard_rows(challenge)[0].submissions == 2


def test_it_shows_who_passed(challenge, students):
    good, bad = students(2)
    challenge.threshold = 100.0
    graded(good, challenge, 150.0)
    graded(bad, challenge, 50.0)

    assert [r.passed for r in leaderboard_rows(challenge)] == [True, False]


def test_it_is_public(client, challenge, students):
    (student,) = students(1)
    graded(student, challenge, math.inf)

    response = client.get(f"/challenges/{challenge.slug}/leaderboard/")

    assert response.status_code == 200
    page = response.content.decode()
    assert student.handle in page
    assert "∞" in page
    assert "MSE" in page
    assert "s0" not in page  # the username never shows


def test_it_builds_the_page_in_a_constant_number_of_queries(
    client, challenge, students, earlier_semester, django_assert_num_queries
):
    make_challenge(earlier_semester, slug="old-keypoints")
    for number, enrollment in enumerate(students(6)):
        graded(enrollment, challenge, 10.0 * (number + 1))
        graded(enrollment, challenge, 5.0)

    # the challenge with its semester and course; the board's version (latest upload and
    # result); the ranked and passed counts and the semester's assistants (taken off them);
    # the number of enrolled students; the page's standings with their enrolments and how many
    # rank above its first; the same challenge in other semesters
    with django_assert_num_queries(8):
        response = client.get(f"/challenges/{challenge.slug}/leaderboard/")
    assert len(response.context["page"].object_list) == 6

    # again, with the board computed: the challenge; the board's version; other semesters
    with django_assert_num_queries(3):
        again = client.get(f"/challenges/{challenge.slug}/leaderboard/")
    assert again.context["page"].object_list == response.context["page"].object_list


def test_it_shows_a_new_result_at_once_despite_the_cached_board(client, challenge, students):
    first, second = students(2)
    graded(first, challenge, 50.0)
    graded(second, challenge, 40.0)
    before = client.get(f"/challenges/{challenge.slug}/leaderboard/").context["page"].object_list
    assert [row.handle for row in before] == [first.handle, second.handle]

    graded(second, challenge, 60.0, minutes_ago=1, finished_at=timezone.now())

    after = client.get(f"/challenges/{challenge.slug}/leaderboard/").context["page"].object_list
    ranked = [(row.handle, row.score) for row in after]
    assert ranked == [(second.handle, 60.0), (first.handle, 50.0)]
    assert after[0].submissions == 2


def test_it_links_to_the_same_challenge_in_earlier_semesters(client, challenge, earlier_semester):
    old = make_challenge(earlier_semester, slug="old-keypoints")

    page = client.get(f"/challenges/{challenge.slug}/leaderboard/").content.decode()

    assert f"/challenges/{old.slug}/leaderboard/" in page
    assert "Summer 2026" in page


def test_it_explains_an_empty_board(client, challenge):
    page = client.get(f"/challenges/{challenge.slug}/leaderboard/").content.decode()

    assert "No graded submissions yet" in page


def test_it_shows_accuracy_as_a_percentage(client, semester, students):
    segmentation = make_challenge(
        semester, slug="seg", task="segmentation", title="Segmentation", threshold=0.64
    )
    (student,) = students(1)
    make_submission(
        student,
        segmentation,
        status=Submission.Status.GRADED,
        score=0.7123,
        passed=True,
        metrics={"accuracy": 0.7123},
    )

    page = client.get("/challenges/seg/leaderboard/").content.decode()

    assert "71.23 %" in page
    assert "64.00 %" in page
    assert "MSE" not in page
