"""/courses/<slug>/archive/: earlier semesters and their boards."""

from __future__ import annotations

from courses.models import Semester
from tests.platform.conftest import make_challenge


def test_it_lists_earlier_semesters_with_links_to_their_boards(
    client, course, challenge, earlier_semester
):
    old = make_challenge(earlier_semester, slug="old-keypoints", title="Old keypoints")
    Semester.objects.create(
        course=course, slug="ss2027", title="Summer 2027", starts_on="2027-04-01"
    )

    page = client.get(f"/courses/{course.slug}/archive/").content.decode()

    assert "Summer 2026" in page
    assert f"/challenges/{old.slug}/leaderboard/" in page
    assert "Winter 2026/27" not in page  # the current semester
    assert "Summer 2027" not in page  # later than the current one
    assert f"/challenges/{challenge.slug}/leaderboard/" not in page


def test_it_is_linked_from_the_board(client, course, challenge):
    page = client.get(f"/challenges/{challenge.slug}/leaderboard/").content.decode()

    assert f"/courses/{course.slug}/archive/" in page


def test_it_answers_404_for_an_unknown_course(client, db):
    assert client.get("/courses/nope/archive/").status_code == 404
