"""The course's baseline on the board: the reference model, once it passed its check, as an
unranked "Course baseline" row between the students it falls between, on the page, in the API's
board and as a marked line on the histogram; the public part only before the reveal."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from courses.models import Enrollment
from leaderboard.views import public as views
from submissions.standings import challenge_reveal
from tests.platform.conftest import graded, make_user
from tests.platform.leaks import assert_hidden, split_metrics
from worker.tasks import check_reference

SVG_TEXT = "{http://www.w3.org/2000/svg}text"


def svg_texts(content: bytes) -> list[str]:
    return ["".join(node.itertext()).strip() for node in ET.fromstring(content).iter(SVG_TEXT)]


def checked(challenge, metrics, *, passed=True, status="graded"):
    """A challenge whose reference model was checked with these figures (as
    ``reference_check_record`` stores them)."""
    challenge.reference_model.name = "reference/model.bin"
    challenge.reference_check = {
        "status": status,
        "passed": passed,
        "score": metrics["score"],
        "metrics": {**metrics, "passed": passed},
    }
    challenge.save()
    return challenge


def body_rows(html: str) -> list[str]:
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    return [row for row in body.split("</tr>") if "<td" in row]


@pytest.fixture
def four(challenge, semester, enrollment):
    """The signed-in student third of four: 300, 200, 100 (theirs), 50."""
    others = [
        Enrollment.objects.create(user=make_user(f"b{n}"), semester=semester) for n in range(3)
    ]
    for student, score in zip(
        [others[0], others[1], enrollment, others[2]], [300, 200, 100, 50], strict=True
    ):
        graded(student, challenge, float(score))
    return challenge


def test_it_places_the_baseline_between_the_students_it_falls_between(client, four, student):
    checked(four, {"score": 150.0, "mse": 1 / 300})
    client.force_login(student)

    page = client.get(reverse("challenge_leaderboard", args=[four.slug])).content.decode()

    rows = body_rows(page)
    assert len(rows) == 5
    assert "Course baseline" in rows[2] and 'class="baseline"' in rows[2]
    assert "150.00" in rows[2]
    # Unranked: the students keep ranks 1 to 4 and the count says four.
    ranks = [row.split('<td class="num">')[1].split("<")[0] for row in rows[:2] + rows[3:]]
    assert ranks == ["1", "2", "3", "4"]
    assert "4 ranked, 4 passed" in page
    # The student's own row stays highlighted.
    assert 'id="me"' in rows[3] and "(you)" in rows[3]
    assert "<caption>" in page and "course baseline" in page


def test_it_keeps_jump_to_my_row_with_the_baseline_on_the_next_page(
    client, four, student, monkeypatch
):
    monkeypatch.setattr(views, "ROWS_PER_PAGE", 2)
    checked(four, {"score": 150.0, "mse": 1 / 300})
    client.force_login(student)
    url = reverse("challenge_leaderboard", args=[four.slug])

    first = client.get(url).content.decode()
    second = client.get(url + "?page=mine").content.decode()

    assert "Course baseline" not in "".join(body_rows(first))
    assert 'href="?page=2#me">Jump to my row' in first
    rows = body_rows(second)
    assert "Course baseline" in rows[0]
    assert 'id="me"' in rows[1]
    assert len(rows) == 3  # two students and the baseline


def test_it_puts_a_baseline_below_everyone_on_the_last_page(client, four, monkeypatch):
    monkeypatch.setattr(views, "ROWS_PER_PAGE", 2)
    checked(four, {"score": 10.0, "mse": 1 / 20})
    url = reverse("challenge_leaderboard", args=[four.slug])

    last = body_rows(client.get(url + "?page=2").content.decode())

    assert "Course baseline" in last[-1]
    assert "Course baseline" not in "".join(body_rows(client.get(url).content.decode()))


@pytest.mark.parametrize(
    "change",
    [
        {"show_baseline": False},
        {"reference_check": {"status": "graded", "passed": False, "score": 150.0}},
        {"reference_check": {"status": "failed", "error": "wrong shape"}},
        {"reference_check": {"status": "queued"}},
    ],
)
def test_it_shows_no_baseline_unless_switched_on_and_passed(client, four, change):
    checked(four, {"score": 150.0, "mse": 1 / 300})
    for name, value in change.items():
        setattr(four, name, value)
    four.save()

    page = client.get(reverse("challenge_leaderboard", args=[four.slug])).content.decode()
    rows = client.get(f"/api/challenges/{four.slug}/leaderboard/").json()["rows"]

    assert "Course baseline" not in page
    assert [row["baseline"] for row in rows] == [False] * 4


def test_it_lists_the_baseline_in_the_api_board(client, four):
    checked(four, {"score": 150.0, "mse": 1 / 300})

    board = client.get(f"/api/challenges/{four.slug}/leaderboard/").json()

    assert board["count"] == 4
    assert [row["rank"] for row in board["rows"]] == [1, 2, None, 3, 4]
    assert board["rows"][2] == {
        "rank": None,
        "handle": "Course baseline",
        "score": 150.0,
        "mse": pytest.approx(1 / 300),
        "passed": True,
        "public_score": None,
        "moved": None,
        "baseline": True,
        "submissions": None,
        "submitted_at": None,
    }


def test_it_marks_the_baseline_on_the_histogram(client, four):
    url = reverse("challenge_histogram", args=[four.slug])
    without = svg_texts(client.get(url).content)
    checked(four, {"score": 150.0, "mse": 1 / 300})

    marked = svg_texts(client.get(url).content)
    page = client.get(reverse("challenge_leaderboard", args=[four.slug])).content.decode()

    assert "course baseline" not in without
    assert "course baseline" in marked  # a new key: the recorded check redraws it
    alt = page[page.index('alt="Histogram') :]
    assert "and the course baseline (150.00) marked as a dotted line" in alt[: alt.index('">')]
    assert "The dotted line marks the course baseline" in page


def test_it_shows_the_public_part_before_the_reveal_and_the_private_after(client, four):
    four.public_fraction = 0.5
    four.threshold = 100.0
    four.save()
    checked(four, split_metrics(public=250.0, private=60.0))
    url = reverse("challenge_leaderboard", args=[four.slug])

    before = client.get(url).content.decode()
    api = client.get(f"/api/challenges/{four.slug}/leaderboard/").content.decode()
    histogram = client.get(reverse("challenge_histogram", args=[four.slug])).content.decode()

    for shown in (before, api, histogram):
        assert_hidden(shown, 250.0, 60.0)
    assert "250.00" in before
    challenge_reveal(four)
    after = client.get(url).content.decode()
    baseline = next(row for row in body_rows(after) if "Course baseline" in row)
    assert "60.00" in baseline and "250.00" in baseline  # private, then public beside it
    assert "not passed" in baseline  # 60 misses the threshold of 100 in the private part


@pytest.mark.slow
@pytest.mark.usefixtures("fresh_runners")
def test_it_records_both_parts_when_the_check_runs(client, challenge, tiny_models):
    challenge.public_fraction = 0.5
    challenge.save()
    challenge.reference_model.save("ref.pt2", ContentFile(tiny_models.zeros_bytes()))

    check_reference.run(challenge.pk)

    challenge.refresh_from_db()
    check = challenge.reference_check
    assert check["status"] == "graded" and check["passed"] is True
    public = check["metrics"]["public"]["score"]
    assert check["metrics"]["private"]["score"] != public
    rows = client.get(f"/api/challenges/{challenge.slug}/leaderboard/").json()["rows"]
    assert [(row["baseline"], row["score"]) for row in rows] == [(True, pytest.approx(public))]
