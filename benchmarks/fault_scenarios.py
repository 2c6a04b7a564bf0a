"""The fault benchmark's scenarios, each on a fresh challenge in one stack (``fault_stack``).

Run inside a process whose Django settings point at that stack. Each scenario returns a dict of
figures (seconds, counts) that ``bench_faults`` prints side by side.
"""

from __future__ import annotations

import signal
import statistics
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import OperationalError, close_old_connections, connection
from django.utils import timezone

from benchmarks.fault_stack import Stack, kill_group
from benchmarks.subject import KIND
from courses.models import Challenge, Course, Enrollment, Semester
from eval_data import get_kind
from eval_data.manifest import write_manifest
from submissions.models import ApiToken, GradingRun, Submission, WorkerHeartbeat
from submissions.services import submission_create

Figures = dict[str, Any]
#: the longest a recovery scenario waits for its work to be graded (goal: 90 s), and a rush
RECOVERY_LIMIT = 300.0
LIMIT = 900.0


def _db(read: Callable[[], Any]) -> Any:
    """``read()``, retried while the database is away (the database restart scenario)."""
    while True:
        try:
            return read()
        except OperationalError:
            close_old_connections()
            connection.close()
            time.sleep(0.2)


class Bench:
    """The course, semester and hidden data the scenarios share."""

    def __init__(self, stack: Stack, images: int) -> None:
        self.stack = stack
        folder = Path(stack.env["GRADER_DATA_ROOT"]) / "bench" / KIND
        folder.mkdir(parents=True)
        get_kind(KIND).synth(folder, images, 5)
        write_manifest(folder, KIND)
        course = Course.objects.create(slug="bench", title="Bench", timezone="Europe/Berlin")
        self.semester = Semester.objects.create(
            course=course, slug="b", title="B", starts_on="2026-10-01", is_current=True
        )
        self.count = 0

    def challenge(self, slug: str) -> Challenge:
        return Challenge.objects.create(
            semester=self.semester, **Challenge.defaults_for(KIND), task=KIND,
            slug=slug, title=slug, deadline=timezone.now() + timedelta(days=1),
            data_dir="bench/keypoints", daily_quota=50, time_limit_seconds=300,
        )  # fmt: skip

    def students(self, count: int) -> list[Enrollment]:
        out = []
        for _ in range(count):
            self.count += 1
            user = User.objects.create_user(f"student{self.count}", "", "x")
            out.append(Enrollment.objects.create(user=user, semester=self.semester))
        return out

    def submit(self, enrollment: Enrollment, challenge: Challenge, data: bytes) -> Submission:
        upload = ContentFile(data, name="model.pt2")
        return submission_create(
            enrollment=enrollment, challenge=challenge, upload=upload, fmt="pt2"
        )


def _graded_counts(ids: list[Any]) -> dict[str, int]:
    counts = {str(pk): 0 for pk in ids}
    for run in GradingRun.objects.filter(submission_id__in=ids, outcome=GradingRun.Outcome.GRADED):
        counts[str(run.submission_id)] += 1
    return counts


def _wait_graded(ids: list[Any], since: float, limit: float = RECOVERY_LIMIT) -> float:
    """Seconds from ``since`` until every submission is graded (or the limit, as inf)."""
    while True:
        left = _db(
            lambda: (
                Submission.objects.filter(pk__in=ids)
                .exclude(status=Submission.Status.GRADED)
                .count()
            )
        )
        if not left:
            return time.monotonic() - since
        if time.monotonic() - since > limit:
            return float("inf")
        time.sleep(0.2)


def _wait_running(submission: Submission) -> None:
    job = f"submission {submission.pk}"
    started = time.monotonic()
    while not WorkerHeartbeat.objects.filter(current_job=job).exists():
        if time.monotonic() - started > LIMIT:
            raise SystemExit(f"{job} never started")
        time.sleep(0.02)


def _outcome(ids: list[Any]) -> Figures:
    counts = _db(lambda: _graded_counts(ids))
    runs = GradingRun.objects.filter(submission_id__in=ids).values_list("outcome", flat=True)
    return {
        "lost": sum(1 for n in counts.values() if n == 0),
        "double": sum(1 for n in counts.values() if n > 1),
        "runs": dict(sorted((o, list(runs).count(o)) for o in set(runs))),
    }


def kill_worker(bench: Bench, seed: bytes) -> Figures:
    """``kill -9`` of a worker's process group mid-job; a second worker is started at once."""
    challenge = bench.challenge("kill-worker")
    (student,) = bench.students(1)
    first = bench.stack.worker("first")
    submission = bench.submit(student, challenge, seed)
    _wait_running(submission)
    kill_group(first, signal.SIGKILL)
    killed = time.monotonic()
    second = bench.stack.worker("second")
    up = time.monotonic()
    recovery = _wait_graded([submission.pk], killed)
    kill_group(second)
    graded = GradingRun.objects.filter(
        submission=submission, outcome=GradingRun.Outcome.GRADED
    ).first()
    return {
        "recovery_s": recovery,
        "after_worker_up_s": recovery - (up - killed),
        "grading_s": graded.seconds if graded is not None else None,
        **_outcome([submission.pk]),
    }


def broker_restart(bench: Bench, demo: bytes, queued: int) -> Figures:
    """``queued`` uploads; while the first is graded, the private Redis is killed (``kill -9``,
    no persistence: every queued message is gone) and started again 2 s later."""
    assert bench.stack.redis is not None
    challenge = bench.challenge("broker-restart")
    students = bench.students(queued)
    worker = bench.stack.worker("broker")
    ids = [bench.submit(s, challenge, demo).pk for s in students]
    _wait_running(Submission.objects.get(pk=ids[0]))
    bench.stack.redis.kill()
    killed = time.monotonic()
    time.sleep(2)
    bench.stack.redis.start()
    recovery = _wait_graded(ids, killed)
    kill_group(worker)
    return {"queued": queued, "recovery_s": recovery, **_outcome(ids)}


def database_restart(bench: Bench, seed: bytes) -> Figures:
    """The private PostgreSQL is stopped (``pg_ctl stop -m fast``: every backend terminated)
    while a worker grades, and started again 5 s later."""
    assert bench.stack.postgres is not None
    challenge = bench.challenge("db-restart")
    (student,) = bench.students(1)
    worker = bench.stack.worker("database")
    submission = bench.submit(student, challenge, seed)
    _wait_running(submission)
    connection.close()
    bench.stack.postgres.stop()
    stopped = time.monotonic()
    time.sleep(5)
    bench.stack.postgres.start()
    recovery = _wait_graded([submission.pk], stopped)
    kill_group(worker)
    return {"down_s": 5.0, "recovery_s": recovery, **_outcome([submission.pk])}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rush(bench: Bench, demo: bytes, students: int, uploads: int, seconds: float) -> Figures:
    """``uploads`` spread evenly over ``seconds``, round-robin over ``students``, each a
    ``POST /api/challenges/<slug>/submissions/`` with a token, to gunicorn (3 sync workers);
    two workers of concurrency 1 grade them. Latency is measured at the client."""
    challenge = bench.challenge("rush")
    enrollments = bench.students(students)
    tokens = [ApiToken.issue(e.user) for e in enrollments]
    web, port = bench.stack.gunicorn()
    workers = [bench.stack.worker(f"rush{n}") for n in range(2)]
    url = f"http://127.0.0.1:{port}/api/challenges/{challenge.slug}/submissions/"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    ids: list[str] = []
    lock = threading.Lock()
    start = time.monotonic() + 1

    def student(n: int) -> None:
        with requests.Session() as session:
            for k in range(n, uploads, students):
                time.sleep(max(0.0, start + k * seconds / uploads - time.monotonic()))
                sent = time.monotonic()
                response = session.post(
                    url,
                    headers={"Authorization": f"Token {tokens[n]}"},
                    files={"file": ("model.pt2", demo)},
                    timeout=120,
                )
                took = time.monotonic() - sent
                with lock:
                    latencies.append(took)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    if response.status_code == 201:
                        ids.append(response.json()["id"])

    threads = [threading.Thread(target=student, args=(n,)) for n in range(students)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent_all = time.monotonic()
    drain = _wait_graded(ids, start, LIMIT)
    for proc in [*workers, web]:
        kill_group(proc)
    return {
        "uploads": uploads,
        "students": students,
        "window_s": seconds,
        "sent_in_s": sent_all - start,
        "statuses": statuses,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * _percentile(latencies, 0.95),
        "max_ms": 1000 * max(latencies),
        "drain_s": drain,
        "drain_after_last_s": drain - (sent_all - start),
        **_outcome(ids),
        "refused": uploads - len(ids),
    }
