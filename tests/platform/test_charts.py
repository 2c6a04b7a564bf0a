"""The board's histogram and a segmentation result's per-class chart: content, caching, access."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from courses.models import Challenge, Enrollment, Semester
from leaderboard import charts
from leaderboard.views import public
from submissions.models import Submission
from tests.platform.conftest import graded, make_challenge, make_submission

SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def svg_texts(content: bytes) -> list[str]:
    root = ET.fromstring(content)
    assert root.tag == f"{SVG_NS}svg"
    return ["".join(node.itertext()).strip() for node in root.iter(f"{SVG_NS}text")]


@pytest.fixture
def seg_challenge(semester: Semester) -> Challenge:
    return make_challenge(
        semester,
        task="segmentation",
        slug="segmentation-ws2026",
        title="Segmentation",
        data_dir="test-semester/segmentation",
        threshold=0.64,
    )


def segmentation_metrics() -> dict[str, object]:
    accuracy: list[float | None] = [None] * 23
    iou: list[float | None] = [None] * 23
    for class_id, (acc, jac) in {1: (0.9, 0.8), 6: (0.7, 0.5), 18: (0.4, 0.25)}.items():
        accuracy[class_id], iou[class_id] = acc, jac
    return {
        "accuracy": 0.7,
        "pooled_accuracy": 0.72,
        "per_class_accuracy": accuracy,
        "per_class_iou": iou,
    }


# --- the histogram builder ------------------------------------------------------------------


def test_it_bins_best_scores_and_puts_infinite_ones_in_the_top_bin():
    scores = [10.0, 10.5, 30.0, math.inf, math.inf, math.nan]

    histogram = charts.best_score_histogram(scores, 20.0, percent=False)

    assert sum(histogram.counts) == 5  # NaN left out
    assert histogram.infinite == 2
    assert histogram.counts[0] == 2
    assert histogram.counts[-1] == 3  # 30 and the two infinite scores
    texts = svg_texts(histogram.svg)
    assert "pass" in texts
    assert any("2 with an infinite score" in t for t in texts)


def test_it_draws_percent_with_the_threshold_inside_the_range():
    histogram = charts.best_score_histogram([0.8, 0.9], 0.5, percent=True)

    assert histogram.edges[0] == pytest.approx(50.0)
    assert histogram.edges[-1] == pytest.approx(90.0)
    assert histogram.counts[-1] == 1


# --- the histogram view ---------------------------------------------------------------------


def test_it_serves_a_histogram_of_each_students_best_score(
    client, seg_challenge, enrollment, other_student, semester, monkeypatch
):
    other = Enrollment.objects.get(user=other_student, semester=semester)
    graded(enrollment, seg_challenge, 0.5)
    graded(enrollment, seg_challenge, 0.9)  # the best of two counts, once
    graded(other, seg_challenge, 0.6)
    make_submission(other, seg_challenge, status=Submission.Status.FAILED)
    seen: list[charts.Histogram] = []
    build = charts.binned_histogram

    def spy(*args, **kwargs):
        seen.append(build(*args, **kwargs))
        return seen[-1]

    # The view bins in the database and only draws: the bins are what it counted.
    monkeypatch.setattr(charts, "binned_histogram", spy)

    response = client.get(reverse("challenge_histogram", args=[seg_challenge.slug]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert "max-age=60" in response["Cache-Control"]
    assert "pass" in svg_texts(response.content)
    assert any("2 students" in t for t in svg_texts(response.content))
    (histogram,) = seen
    assert sum(histogram.counts) == 2
    assert histogram.counts[-1] == 1  # 90 %, the top of the range
    assert histogram.edges[0] == pytest.approx(60.0)


def test_it_says_so_when_nobody_is_graded_yet(client, seg_challenge):
    response = client.get(reverse("challenge_histogram", args=[seg_challenge.slug]))

    assert response.status_code == 200
    assert "no graded submissions yet" in svg_texts(response.content)


def test_it_redraws_when_a_new_result_arrives(
    client, seg_challenge, enrollment, django_assert_num_queries
):
    url = reverse("challenge_histogram", args=[seg_challenge.slug])
    now = timezone.now()
    graded(enrollment, seg_challenge, 0.7, finished_at=now - timedelta(minutes=5))
    first = client.get(url).content
    # Cached: the challenge, then the latest finish time (the cache key); no best-score query.
    with django_assert_num_queries(2):
        assert client.get(url).content == first

    newer = graded(enrollment, seg_challenge, 0.8, finished_at=now)

    second = client.get(url).content
    assert second != first
    assert public.challenge_best_scores(seg_challenge) == [pytest.approx(0.8)]
    assert newer.score == 0.8


def test_it_404s_for_an_unknown_challenge(client, db):
    assert client.get("/challenges/nope/leaderboard/histogram.svg").status_code == 404


def test_it_links_the_histogram_from_the_include(rf, seg_challenge):
    from django.template.loader import render_to_string

    html = render_to_string("leaderboard/public/_histogram.html", {"challenge": seg_challenge})

    assert reverse("challenge_histogram", args=[seg_challenge.slug]) in html
    assert 'alt="Histogram of best scores' in html


# --- a result's per-class chart -------------------------------------------------------------


@pytest.fixture
def seg_result(enrollment, seg_challenge) -> Submission:
    return graded(enrollment, seg_challenge, 0.7, metrics=segmentation_metrics())


def test_it_shows_the_owner_per_class_accuracy_and_iou(client, student, seg_result):
    client.force_login(student)

    response = client.get(reverse("submission_chart", args=[seg_result.pk, "per-class"]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    texts = svg_texts(response.content)
    assert {"grass", "sky", "road", "accuracy", "IoU"} <= set(texts)
    assert "cow" not in texts  # absent from the test set: no bar


def test_it_links_the_charts_from_the_result_page(client, student, seg_result):
    client.force_login(student)

    page = client.get(reverse("submission_detail", args=[seg_result.pk])).content.decode()

    assert reverse("submission_chart", args=[seg_result.pk, "per-class"]) in page
    # No public samples were drawn for this one.
    assert reverse("submission_picture", args=[seg_result.pk, "samples"]) not in page


def test_it_gives_each_chart_a_table_of_its_numbers(client, student, seg_result):
    """The text alternative of the per-class chart: the same numbers, the same classes."""
    import re

    client.force_login(student)

    page = client.get(reverse("submission_detail", args=[seg_result.pk])).content.decode()

    table = page[page.index('<details class="chart-numbers">') : page.index("</details>")]
    rows = re.findall(r'<tr><th scope="row">(\w+)</th>(.*?)</tr>', table)
    cells = {name: re.findall(r'<td class="num">([^<]*)</td>', row) for name, row in rows}
    assert cells == {
        "grass": ["90.0 %", "80.0 %"],
        "sky": ["70.0 %", "50.0 %"],
        "road": ["40.0 %", "25.0 %"],
    }
    assert 'role="region"' in table and 'tabindex="0"' in table and "<caption>" in table


@pytest.mark.parametrize("who", ["other_student", "outsider", None])
def test_it_hides_a_result_chart_from_everyone_else(client, request, seg_result, who):
    if who:
        client.force_login(request.getfixturevalue(who))

    for name, which in (("submission_chart", "per-class"), ("submission_picture", "samples")):
        assert client.get(reverse(name, args=[seg_result.pk, which])).status_code == 404


def test_it_lets_a_ta_see_the_chart(client, ta, seg_result):
    client.force_login(ta)

    response = client.get(reverse("submission_chart", args=[seg_result.pk, "per-class"]))

    assert response.status_code == 200
    assert {"grass", "sky", "road", "accuracy", "IoU"} <= set(svg_texts(response.content))


def test_it_has_no_per_class_chart_for_keypoints(client, student, enrollment, challenge):
    client.force_login(student)
    submission = graded(enrollment, challenge, 5.0)

    assert (
        client.get(reverse("submission_chart", args=[submission.pk, "per-class"])).status_code
        == 404
    )


def test_it_streams_the_stored_sample_figure(client, student, seg_result):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    name = default_storage.save(f"figures/{seg_result.pk}/samples.png", ContentFile(b"\x89PNG.."))
    Submission.objects.filter(pk=seg_result.pk).update(pictures={"samples": name})
    client.force_login(student)

    response = client.get(reverse("submission_picture", args=[seg_result.pk, "samples"]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == b"\x89PNG.."
    page = client.get(reverse("submission_detail", args=[seg_result.pk])).content.decode()
    assert reverse("submission_picture", args=[seg_result.pk, "samples"]) in page
