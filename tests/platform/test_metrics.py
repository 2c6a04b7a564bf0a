"""Prometheus metrics at /metrics: off without METRICS_TOKEN, only with the bearer token, and
the queue, workers, gradings and requests as read by prometheus-client's own parser."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from submissions import heartbeats
from submissions.models import GradingRun
from tests.platform.conftest import make_submission

TOKEN = "s3cret-scrape-token"


def scrape(client: Client) -> dict[str, list]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    return {
        family.name: family.samples
        for family in text_string_to_metric_families(response.content.decode())
    }


def test_it_is_off_without_a_token_setting(db, settings):
    settings.METRICS_TOKEN = ""

    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Token {TOKEN}"])
def test_it_refuses_without_the_bearer_token(db, settings, header):
    settings.METRICS_TOKEN = TOKEN
    extra = {"HTTP_AUTHORIZATION": header} if header else {}

    assert Client().get("/metrics", **extra).status_code == 403


def test_it_exports_queue_workers_gradings_and_requests(enrollment, challenge, settings):
    settings.METRICS_TOKEN = TOKEN
    make_submission(enrollment, challenge, created_at=timezone.now() - timedelta(seconds=50))
    make_submission(enrollment, challenge)
    graded = make_submission(enrollment, challenge, status="graded")
    end = timezone.now()
    for seconds, outcome in ((3.0, "graded"), (8.0, "graded"), (45.0, "rejected")):
        GradingRun.objects.create(
            submission=graded,
            attempt=1,
            started_at=end - timedelta(seconds=seconds),
            finished_at=end,
            outcome=outcome,
        )
    heartbeats.beat("w@h:1", host="w@h", device="cpu")
    client = Client()
    client.get("/")

    metrics = scrape(client)

    depth = {s.labels["challenge"]: s.value for s in metrics["leaderboard_queue_depth"]}
    assert depth == {challenge.slug: 2.0}
    (oldest,) = metrics["leaderboard_oldest_queued_seconds"]
    assert 50 <= oldest.value < 60
    (up,) = metrics["leaderboard_worker_up"]
    assert (up.labels["worker"], up.value) == ("w@h:1", 1.0)
    hist = {
        (s.name, s.labels["outcome"], s.labels.get("le")): s.value
        for s in metrics["leaderboard_grading_seconds"]
    }
    assert hist[("leaderboard_grading_seconds_count", "graded", None)] == 2
    assert hist[("leaderboard_grading_seconds_bucket", "graded", "5.0")] == 1
    assert hist[("leaderboard_grading_seconds_bucket", "graded", "10.0")] == 2
    assert hist[("leaderboard_grading_seconds_sum", "graded", None)] == pytest.approx(11.0)
    assert hist[("leaderboard_grading_seconds_bucket", "rejected", "30.0")] == 0
    requests = {
        (s.labels["view"], s.labels["status"]): s.value
        for s in metrics["leaderboard_http_requests"]
        if s.name == "leaderboard_http_requests_total"
    }
    assert requests[("home", "200")] >= 1
    assert "leaderboard_http_request_duration_seconds" in metrics


def request_series(client: Client) -> dict[tuple, float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for s in scrape(client)["leaderboard_http_requests"]
        if s.name == "leaderboard_http_requests_total"
    }


def test_it_counts_made_up_methods_as_other(db, settings):
    settings.METRICS_TOKEN = TOKEN
    client = Client()
    before = request_series(client)

    for n in range(300):
        client.generic(f"FOO{n}", "/")
    after = request_series(client)

    assert {dict(labels)["method"] for labels in after} <= {
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"
    }  # fmt: skip
    other = {labels: n for labels, n in after.items() if dict(labels)["method"] == "other"}
    assert sum(other.values()) >= 300
    # At most two new series whatever earlier tests in this process sent: the home view's
    # "other" and the first scrape's own.
    assert len(after.keys() - before.keys()) <= 2
