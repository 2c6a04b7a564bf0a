"""Prometheus metrics at ``/metrics``: the queue, the workers and gradings read from the database
at scrape time, and request counts of this web process.

* The database is the source of truth, so the gauges (queue depth per challenge, the oldest
  queued submission's age, each worker up or not) and the grading-time histogram are computed
  from it when Prometheus scrapes (``DatabaseCollector``): every web process answers the same,
  and nothing is lost when a worker process dies. The histogram's buckets count every finished
  grading run, so they only grow, as Prometheus expects of a histogram.
* Request metrics are counted in this process by a small middleware with prometheus-client
  (rather than django-prometheus, not a dependency of the project and far more than two
  series): requests by view and status, and their latency by view. Under gunicorn each process
  counts its own; Prometheus sums them per instance.

The endpoint exists only when ``METRICS_TOKEN`` is set, and answers only to
``Authorization: Bearer <METRICS_TOKEN>`` (404 without the setting, 403 with a wrong token).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from submissions import health
from submissions.models import GradingRun

#: grading times, in seconds: a tiny model's few seconds up to the default limits' minutes
GRADING_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
#: finished outcomes the histogram reports
ENDED = (
    GradingRun.Outcome.GRADED,
    GradingRun.Outcome.REJECTED,
    GradingRun.Outcome.PLATFORM_ERROR,
    GradingRun.Outcome.LOST,
)


class DatabaseCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        depth = GaugeMetricFamily(
            "leaderboard_queue_depth", "Submissions waiting to be graded", labels=["challenge"]
        )
        for row in health.queues():
            depth.add_metric([row.challenge], row.depth)
        yield depth
        yield GaugeMetricFamily(
            "leaderboard_oldest_queued_seconds",
            "How long the oldest queued submission has waited",
            value=health.oldest_queued_seconds(now),
        )
        up = GaugeMetricFamily(
            "leaderboard_worker_up",
            "1 while a grading process beats its heartbeat, 0 once it stopped (last day)",
            labels=["worker", "host", "device"],
        )
        for worker in health.workers(now):
            up.add_metric([worker.name, worker.host, worker.device], 1.0 if worker.alive else 0.0)
        yield up
        yield grading_histogram()


def grading_histogram() -> HistogramMetricFamily:
    """Every finished grading run's duration, by challenge and outcome: one grouped query."""
    took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    buckets = {
        f"le_{i}": Count("pk", filter=Q(took__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(GRADING_BUCKETS)
    }
    rows = (
        GradingRun.objects.filter(finished_at__isnull=False, outcome__in=ENDED)
        .annotate(took=took)
        .values("submission__challenge__slug", "outcome")
        .annotate(n=Count("pk"), total=Sum("took"), **buckets)
        .order_by("submission__challenge__slug", "outcome")
    )
    family = HistogramMetricFamily(
        "leaderboard_grading_seconds",
        "Time from claim to result of finished gradings",
        labels=["challenge", "outcome"],
    )
    for values in rows:
        row: dict[str, Any] = dict(values)
        counts = [(str(bound), row[f"le_{i}"]) for i, bound in enumerate(GRADING_BUCKETS)]
        counts.append(("+Inf", row["n"]))
        total = row["total"]
        seconds = total.total_seconds() if isinstance(total, timedelta) else float(total or 0)
        family.add_metric(
            [row["submission__challenge__slug"], row["outcome"]], counts, sum_value=seconds
        )
    return family


# --- this process's requests ------------------------------------------------------------------

# No auto_describe: it would run the collector (query the database) at import time.
REGISTRY = CollectorRegistry()
REGISTRY.register(DatabaseCollector())
REQUESTS = Counter(
    "leaderboard_http_requests",
    "HTTP requests answered, by view and status",
    ["view", "method", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "leaderboard_http_request_duration_seconds",
    "Time to answer an HTTP request, by view",
    ["view"],
    registry=REGISTRY,
)


#: methods counted under their own name; any other is counted as ``other``
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str | None) -> str:
    # A client may send any token as a method (gunicorn and Caddy pass it on): each made-up one
    # would be a series of its own, kept for the life of the process.
    return method if method in METHODS else "other"


class RequestMetricsMiddleware:
    """Counts every request by its view's name (not its path: ids would explode the series) and
    its method (``method_label``), so the number of series is bounded by the URL patterns."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match else "") or "unresolved"
        REQUESTS.labels(view, method_label(request.method), str(response.status_code)).inc()
        LATENCY.labels(view).observe(time.perf_counter() - start)
        return response


def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("metrics are off")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return HttpResponse(
            "a valid bearer token is needed\n", status=403, content_type="text/plain"
        )
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
