"""The board as a signed-in student or staff sees it; a closed semester's board."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from courses.models import Enrollment
from leaderboard.views import public as views
from tests.platform.conftest import graded, make_user


def test_it_highlights_the_signed_in_students_own_row(client, student, enrollment, challenge):
    rival = Enrollment.objects.create(user=make_user("rival"), semester=challenge.semester)
    graded(rival, challenge, 200.0)
    graded(enrollment, challenge, 100.0)
    client.force_login(student)

    page = client.get(f"/challenges/{challenge.slug}/leaderboard/").content.decode()

    assert page.count('class="mine') == 1
    mine = page[page.index('class="mine') :]
    assert enrollment.handle in mine[: mine.index("</tr>")]
    assert "(you)" in mine[: mine.index("</tr>")]
    assert rival.handle not in mine[: mine.index("</tr>")]


def test_it_links_to_the_page_of_my_row(client, student, enrollment, challenge, monkeypatch):
    monkeypatch.setattr(views, "ROWS_PER_PAGE", 2)
    for number in range(3):
        ahead = Enrollment.objects.create(user=make_user(f"a{number}"), semester=challenge.semester)
        graded(ahead, challenge, 100.0 + number)
    graded(enrollment, challenge, 1.0)
    client.force_login(student)

    response = client.get(f"/challenges/{challenge.slug}/leaderboard/")

    second = client.get(f"/challenges/{challenge.slug}/leaderboard/?page=2").content.decode()
    assert 'href="?page=2#me"' in response.content.decode()
    assert "mine" not in response.content.decode().split("<tbody>")[1]
    assert 'id="me"' in second
    # The board pages by rank, not by time.
    assert 'href="?page=2">lower ranks →' in response.content.decode()
    assert 'href="?page=1">← higher ranks' in second


def test_it_says_how_many_students_are_not_ranked(client, enrollment, other_student, challenge):
    graded(enrollment, challenge, 50.0)

    page = client.get(f"/challenges/{challenge.slug}/leaderboard/").content.decode()

    assert "1 ranked, 1 passed; 1 enrolled student without a graded submission" in page


def test_it_marks_a_closed_semesters_board_final(client, enrollment, challenge):
    semester = challenge.semester
    semester.closed = True
    semester.save()
    semester.closed_at = datetime(2027, 3, 31, 22, 0, tzinfo=UTC)
    semester.save()
    graded(enrollment, challenge, 50.0)

    page = client.get(f"/challenges/{challenge.slug}/leaderboard/").content.decode()

    assert "Closed on" in page
    assert "01 Apr 2027, 00:00:00 CEST" in page  # the course's timezone
    assert "final results" in page


@pytest.mark.parametrize("who", ["student", "outsider"])
def test_it_hides_the_staff_links_from_students(client, challenge, who, request):
    client.force_login(request.getfixturevalue(who))

    page = client.get(f"/challenges/{challenge.slug}/leaderboard/").content.decode()

    assert "/staff/" not in page


@pytest.mark.parametrize("who", ["staff", "ta"])
def test_it_links_staff_to_the_grade_book(client, challenge, who, request):
    client.force_login(request.getfixturevalue(who))

    page = client.get(f"/challenges/{challenge.slug}/leaderboard/").content.decode()

    assert f"/challenges/{challenge.slug}/staff/" in page
    assert f"/challenges/{challenge.slug}/staff/passes.csv" in page


def test_it_builds_a_students_view_in_a_constant_number_of_queries(
    client, student, enrollment, challenge, django_assert_num_queries
):
    for number in range(5):
        other = Enrollment.objects.create(user=make_user(f"q{number}"), semester=challenge.semester)
        graded(other, challenge, 10.0 * number)
    graded(enrollment, challenge, 25.0)
    client.force_login(student)

    # session; user; the challenge with its semester and course; the student's standing, the
    # semester's assistants and how many rows come before the student's (their page); the
    # board's version; the ranked and passed counts; the number of enrolled students; the
    # page's rows and how many rank above its first; the same challenge in other semesters;
    # whether the user is a TA of the semester (staff links)
    with django_assert_num_queries(13):
        response = client.get(f"/challenges/{challenge.slug}/leaderboard/")

    assert len(response.context["page"].object_list) == 6
