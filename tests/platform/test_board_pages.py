"""A board page ranked by the database (``leaderboard.board_pages``): the same rows as the whole
board, page boundaries, "jump to my row", the reveal phase on later pages, the API's pages, and
a cost that does not grow with the number of students."""

from __future__ import annotations

import math
import random
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from courses.models import Enrollment
from leaderboard import charts
from leaderboard.board_pages import BINS, board_page, score_bins
from leaderboard.boards import leaderboard_compute
from leaderboard.views import public as views
from submissions.standings import challenge_reveal
from tests.platform.conftest import graded, make_submission, make_user
from tests.platform.leaks import assert_hidden, split_metrics


def enrol(semester, count: int, prefix: str = "s") -> list[Enrollment]:
    return [
        Enrollment.objects.create(user=make_user(f"{prefix}{n:03d}"), semester=semester)
        for n in range(count)
    ]


def board_url(challenge, page=None) -> str:
    url = f"/challenges/{challenge.slug}/leaderboard/"
    return url if page is None else f"{url}?page={page}"


def api_url(challenge, page=None) -> str:
    url = f"/api/challenges/{challenge.slug}/leaderboard/"
    return url if page is None else f"{url}?page={page}"


def ranks_on(html: str) -> list[int]:
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    return [int(rank) for rank in re.findall(r'<tr[^>]*>\s*<td class="num">(\d+)</td>', body)]


@pytest.fixture
def seven(challenge, semester):
    """Seven students, scores 700 down to 100: three pages of three (ranks 1-3, 4-6, 7)."""
    students = enrol(semester, 7)
    for number, student in enumerate(students):
        graded(student, challenge, 700.0 - 100.0 * number)
    return students


# --- the same ranking as the whole board ---------------------------------------------------


def test_it_ranks_page_by_page_exactly_as_the_whole_board(challenge, semester):
    rng = random.Random(7)
    students = enrol(semester, 23)
    for number, student in enumerate(students):
        # Few distinct scores, so that ties cross page boundaries; two infinities; equal
        # scores ranked by the earlier upload.
        score = math.inf if number < 2 else float(rng.choice([10, 20, 20, 30, 40]))
        graded(student, challenge, score, minutes_ago=rng.randrange(1, 500))
    ta = Enrollment.objects.create(
        user=make_user("ta2"), semester=semester, role=Enrollment.Role.TA
    )
    graded(ta, challenge, 1000.0)  # never ranked

    whole = leaderboard_compute(challenge, False).rows
    paged = [
        row
        for number in (1, 2, 3, 4, 5)
        for row in board_page(challenge, False, number, per_page=5).rows
    ]

    assert len(whole) == 23
    assert paged == whole
    assert paged[0].rank == paged[1].rank == 1  # the two infinities share the first rank
    assert len({row.rank for row in paged}) < 23  # and other ties share theirs


def test_it_ranks_the_revealed_phase_and_who_moved_as_the_whole_board(split_field):
    challenge = split_field
    challenge_reveal(challenge)

    whole = leaderboard_compute(challenge, True).rows
    paged = [
        row for number in (1, 2) for row in board_page(challenge, True, number, per_page=2).rows
    ]

    assert paged == whole
    assert [row.moved for row in paged] == [2, 0, -2]


# --- the page -------------------------------------------------------------------------------


def test_it_cuts_the_board_into_pages_of_rows(client, challenge, seven, monkeypatch):
    monkeypatch.setattr(views, "ROWS_PER_PAGE", 3)

    pages = [client.get(board_url(challenge, n)).content.decode() for n in (1, 2, 3)]

    assert [ranks_on(page) for page in pages] == [[1, 2, 3], [4, 5, 6], [7]]
    assert "page 2 of 3" in pages[1]
    assert 'href="?page=1">← higher ranks' in pages[1]
    assert 'href="?page=3">lower ranks →' in pages[1]
    assert "lower ranks" not in pages[2]
    # A page out of range or not a number gives the nearest page, as Django's paginator does.
    assert ranks_on(client.get(board_url(challenge, 99)).content.decode()) == [7]
    assert ranks_on(client.get(board_url(challenge, "x")).content.decode()) == [1, 2, 3]
    assert "7 ranked, 7 passed" in pages[2]


def test_it_jumps_to_the_row_of_a_student_on_page_three(client, challenge, seven, monkeypatch):
    monkeypatch.setattr(views, "ROWS_PER_PAGE", 3)
    last = seven[-1]  # rank 7: the third page
    client.force_login(last.user)

    first = client.get(board_url(challenge)).content.decode()
    mine = client.get(board_url(challenge, "mine")).content.decode()

    assert 'href="?page=3#me">Jump to my row</a>' in first
    assert 'id="me"' not in first
    assert ranks_on(mine) == [7]
    row = mine[mine.index('id="me"') :]
    assert last.handle in row[: row.index("</tr>")]
    assert 'class="mine' in mine


def test_it_keeps_the_phase_of_the_viewer_on_later_pages(client, split_field, monkeypatch):
    monkeypatch.setattr(views, "ROWS_PER_PAGE", 2)
    challenge = split_field

    before = client.get(board_url(challenge, 2)).content.decode()

    # Before the reveal, page 2 holds the public phase's third row (public 120) and none of
    # any private or whole-set figure.
    assert "120.00" in before
    for public, private in [(300.0, 50.0), (200.0, 150.0), (120.0, 250.0)]:
        assert_hidden(before, public, private)
    challenge.deadline = timezone.now() - timedelta(seconds=1)
    challenge.save()

    after = client.get(board_url(challenge, 2)).content.decode()

    # After it, the private phase's third row: private 50, public 300, moved down two.
    assert "50.00" in after and "300.00" in after
    assert "▼ 2" in after


def test_it_builds_any_page_in_the_same_number_of_queries_at_any_size(
    client, challenge, semester, monkeypatch, django_assert_num_queries
):
    monkeypatch.setattr(views, "ROWS_PER_PAGE", 10)
    (only,) = enrol(semester, 1, "one")
    graded(only, challenge, 50.0)
    client.force_login(only.user)

    def queries(url: str) -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from leaderboard.board_pages import board_pages_forget

        board_pages_forget()
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    small = [queries(board_url(challenge, "mine")), queries(api_url(challenge, "mine"))]
    for number, student in enumerate(enrol(semester, 34, "many")):
        graded(student, challenge, 100.0 + number)
    large = [queries(board_url(challenge, "mine")), queries(api_url(challenge, "mine"))]

    assert large == small
    assert client.get(board_url(challenge, "mine")).context["page"].number == 4
    # session; user; the challenge; the student's standing, the semester's assistants and how
    # many rows come before the student's (their page); the board's version; the ranked and
    # passed counts; the enrolled students; the page's rows and how many rank above its first;
    # the same challenge in other semesters; whether the user is a TA of the semester
    from leaderboard.board_pages import board_pages_forget

    board_pages_forget()
    with django_assert_num_queries(13):
        client.get(board_url(challenge, 2))


# --- the API's pages ------------------------------------------------------------------------


@pytest.mark.slow
def test_it_links_the_next_and_previous_api_pages(client, challenge, semester):
    students = enrol(semester, 205)
    for number, student in enumerate(students):
        graded(student, challenge, 1000.0 - number)
    client.force_login(students[150].user)

    first = client.get(api_url(challenge)).json()
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()
    mine = client.get(api_url(challenge, "mine")).json()

    assert (first["count"], first["pages"], first["page"]) == (205, 3, 1)
    assert first["previous"] is None
    assert first["next"] == f"http://testserver{api_url(challenge, 2)}"
    assert second["previous"] == f"http://testserver{api_url(challenge, 1)}"
    assert [row["rank"] for row in second["rows"]] == list(range(101, 201))
    assert [row["rank"] for row in third["rows"]] == list(range(201, 206))
    assert third["next"] is None
    assert first["my_page"] == 2 and mine["page"] == 2
    assert students[150].handle in [row["handle"] for row in mine["rows"]]


@pytest.mark.parametrize(
    ("page", "status", "code"),
    [("x", 400, "bad_page"), ("0", 404, "no_page"), ("9", 404, "no_page")],
)
def test_it_refuses_an_api_page_that_is_not_there(client, challenge, seven, page, status, code):
    response = client.get(api_url(challenge, page))

    assert response.status_code == status
    assert response.json()["code"] == code


# --- the histogram, binned by the database --------------------------------------------------


def test_it_bins_scores_in_the_database_as_numpy_does(challenge, semester):
    rng = random.Random(3)
    scores = [rng.uniform(1.0, 500.0) for _ in range(40)] + [math.inf, math.inf]
    for student, score in zip(enrol(semester, len(scores)), scores, strict=True):
        graded(student, challenge, score)

    bins = score_bins(challenge, False, scale=1.0, lines=[challenge.threshold])
    expected = charts.best_score_histogram(scores, challenge.threshold, percent=False)

    assert len(bins.counts) == BINS
    assert bins.counts == expected.counts
    assert bins.edges == pytest.approx(expected.edges)
    assert (bins.infinite, bins.students) == (2, 42)


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def split_field(challenge, semester, enrollment):
    """Three students of a split challenge: the public leader falls to last in private."""
    challenge.public_fraction = 0.5
    challenge.threshold = 100.0
    challenge.save()
    others = [enrollment, *enrol(semester, 2, "split")]
    for student, (public, private) in zip(
        others, [(300.0, 50.0), (200.0, 150.0), (120.0, 250.0)], strict=True
    ):
        metrics = split_metrics(public, private)
        make_submission(
            student,
            challenge,
            created_at=timezone.now() - timedelta(minutes=60),
            status="graded",
            score=metrics["score"],
            passed=metrics["score"] >= challenge.threshold,
            metrics=metrics,
        )
    return challenge
