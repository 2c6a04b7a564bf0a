"""A deadline night, end to end: ``python -m benchmarks.bench_rush [--quick]``.

By default 1,500 students upload 4,500 models over 15 minutes, a third of them in the final
2 minutes, through the production stack started here on 127.0.0.1: Caddy (``deploy/Caddyfile``)
→ gunicorn (``deploy/gunicorn.conf.py``) → a private PostgreSQL 15 cluster + a private
``redis-server``, graded by ``--workers`` Celery workers (one of them runs beat, as one host of
a site does). Every upload is a ``POST /api/challenges/<slug>/submissions/`` with the student's
API token, sent by ``--threads`` client threads at its scheduled time (open loop: a slow server
does not slow the schedule down, it makes requests wait for a free client thread, which
counts in their latency).

The model is the keypoints demo model graded on ``--images`` hidden images, small enough that
the queue drains here in minutes. Printed at the end (and as one JSON object on the last line):

* web latency at the client: p50 / p95 / max, the final minute's p95, and responses by status;
* drain: seconds from the last upload until every accepted upload is graded;
* lost (never graded) and double (graded more than once) uploads;
* fairness: the wait from upload to start of grading of each student's first, second and third
  upload (p50 / p95), and how many first uploads were overtaken by another student's third
  upload that was queued *after* them (goal: none);
* housekeeping: the longest gap between two sweeps while uploads waited (from beat's log; goal:
  at most twice ``GRADER_SWEEP_EVERY_SECONDS``);
* the machine: load average and CPU use while it ran, and the memory (proportional set size)
  of the web server and of the workers, sandboxes included.

Needs root (the PostgreSQL cluster runs as ``postgres``), Debian's caddy, redis-server and
PostgreSQL 15 binaries (``make install-dev`` installs what the tests need, which is the same).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from queue import Empty, Queue
from typing import Any

from benchmarks.fault_stack import ROOT, Stack, free_port, kill_group, wait_port
from benchmarks.subject import KIND

#: production timings: the sweep every 15 s, a worker dead after 30 s without a beat
TIMINGS = {
    "GRADER_HEARTBEAT_SECONDS": "5",
    "GRADER_WORKER_DEAD_SECONDS": "30",
    "GRADER_SWEEP_EVERY_SECONDS": "15",
}
#: what a production site sets (docs/operating.md): DEBUG off, so Django keeps no log of every
#: query (with it on, each worker process held up to 9,000 of them, which read as memory growth);
#: plain http, as Caddy serves the benchmark without TLS
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": uuid.uuid4().hex,
    "SERVE_PLAIN_HTTP": "true",
}
GOALS = {
    "lost": 0,
    "double": 0,
    "web_p95_ms": 300,
    "firsts_overtaken": 0,
}
#: how long the drain may take before the benchmark gives up
DRAIN_LIMIT = 3600.0


@dataclass(frozen=True)
class Plan:
    students: int
    uploads: int
    window_s: float
    final_s: float
    threads: int
    workers: int
    concurrency: int
    images: int
    seed: int = 0

    def schedule(self) -> list[tuple[float, int]]:
        """(seconds from start, student) for every upload, in time order: two thirds spread
        evenly over the window before the final stretch, one third within it."""
        rng = random.Random(self.seed)
        late = self.uploads // 3
        early = self.uploads - late
        times = [rng.uniform(0, self.window_s - self.final_s) for _ in range(early)]
        times += [rng.uniform(self.window_s - self.final_s, self.window_s) for _ in range(late)]
        per_student = -(-self.uploads // self.students)
        students = [n for n in range(self.students) for _ in range(per_student)][: self.uploads]
        rng.shuffle(students)
        return sorted(zip(times, students, strict=True))


@dataclass
class Sent:
    at: float
    student: int
    latency: float
    status: int
    submission: str | None


@dataclass
class Sampler:
    """Load average, CPU use and the memory of the given process groups, every few seconds.

    Memory is the proportional set size (``Pss`` of ``/proc/<pid>/smaps_rollup``): pages a
    forked sandbox job shares with its zygote count once, split among them, so the figure does
    not rise and fall with the number of jobs alive at the moment of the sample as a sum of
    resident sizes would."""

    groups: dict[str, list[int]]
    every: float = 5.0
    loads: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    pss_mb: dict[str, list[float]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    @staticmethod
    def _cpu_times() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    def _pss(self) -> dict[str, float]:
        """Megabytes of each named group of process groups."""
        names = {pgid: name for name, pgids in self.groups.items() for pgid in pgids}
        totals = dict.fromkeys(self.groups, 0)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                name = names.get(int(stat.rsplit(")", 1)[1].split()[2]))
                if name is None:
                    continue
                for line in (entry / "smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        totals[name] += int(line.split()[1])
                        break
            except (OSError, ValueError, IndexError):
                continue
        return {name: kb / 1024 for name, kb in totals.items()}

    def run(self) -> None:
        busy, total = self._cpu_times()
        while not self.stop.wait(self.every):
            self.loads.append(os.getloadavg()[0])
            busy2, total2 = self._cpu_times()
            self.cpu.append(100 * (busy2 - busy) / max(1, total2 - total))
            busy, total = busy2, total2
            for name, mb in self._pss().items():
                self.pss_mb.setdefault(name, []).append(mb)

    def memory(self) -> dict[str, Any]:
        """``pss_mb_<group>``: first, largest and last sample, and the mean of each tenth of the
        run in order: a warm-up (the sandboxes' zygotes start with the first gradings) shows in
        the first tenths, growth as tenths that keep rising."""
        figures: dict[str, Any] = {}
        for name, samples in self.pss_mb.items():
            count = len(samples)
            tenths = [samples[count * i // 10 : count * (i + 1) // 10] for i in range(10)]
            figures[f"pss_mb_{name}"] = {
                "start": round(samples[0]),
                "max": round(max(samples)),
                "end": round(samples[-1]),
                "tenths": [round(statistics.fmean(t)) for t in tenths if t],
            }
        return figures


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(1000 * value, 1)


def caddy(stack: Stack, upstream: int) -> int:
    """Caddy with the production Caddyfile in front of gunicorn, on a free port."""
    binary = shutil.which("caddy")
    if binary is None:
        raise SystemExit("caddy is missing: run `make install-dev` (Debian package caddy)")
    port = free_port()
    home = stack.tmp / "caddy"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "SITE_ADDRESS": f"http://127.0.0.1:{port}",
        "UPSTREAM": f"127.0.0.1:{upstream}",
    }
    proc = subprocess.Popen(
        [binary, "run", "--config", "deploy/Caddyfile", "--adapter", "caddyfile"],
        cwd=ROOT, env=env, stdout=(stack.tmp / "caddy.log").open("w"),
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    stack.procs.append(proc)
    wait_port(port, 60)
    return port


def _setup(plan: Plan, stack: Stack) -> tuple[str, list[str]]:
    """The course, the challenge, its hidden data and the students with their API tokens."""
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.utils import timezone

    from courses.models import Challenge, Course, Enrollment, Semester
    from eval_data import get_kind
    from eval_data.manifest import write_manifest
    from submissions.models import ApiToken

    folder = Path(stack.env["GRADER_DATA_ROOT"]) / "rush" / KIND
    folder.mkdir(parents=True)
    get_kind(KIND).synth(folder, plan.images, 5)
    write_manifest(folder, KIND)
    course = Course.objects.create(slug="rush", title="Rush", timezone="Europe/Berlin")
    semester = Semester.objects.create(
        course=course, slug="r", title="R", starts_on="2026-10-01", is_current=True
    )
    challenge = Challenge.objects.create(
        semester=semester, **Challenge.defaults_for(KIND), task=KIND, slug="rush",
        title="Rush", deadline=timezone.now() + timedelta(days=1),
        data_dir=f"rush/{KIND}", daily_quota=50, time_limit_seconds=300,
    )  # fmt: skip
    # One password hash for every student: hashing 1,500 passwords would take minutes.
    password = make_password(uuid.uuid4().hex)
    users = User.objects.bulk_create(
        User(username=f"student{n:05d}", password=password) for n in range(plan.students)
    )
    users = list(User.objects.filter(username__startswith="student").order_by("username"))
    for user in users:
        Enrollment.objects.create(user=user, semester=semester)
    tokens = [ApiToken.issue(user) for user in users]
    return challenge.slug, tokens


def _send_all(plan: Plan, url: str, tokens: list[str], model: bytes) -> list[Sent]:
    import requests

    events: Queue[tuple[float, int]] = Queue()
    for event in plan.schedule():
        events.put(event)
    sent: list[Sent] = []
    lock = threading.Lock()
    start = time.monotonic() + 2

    def client() -> None:
        with requests.Session() as session:
            while True:
                try:
                    at, student = events.get_nowait()
                except Empty:
                    return
                time.sleep(max(0.0, start + at - time.monotonic()))
                began = time.monotonic()
                try:
                    response = session.post(
                        url,
                        headers={"Authorization": f"Token {tokens[student]}"},
                        files={"file": ("model.pt2", model)},
                        timeout=300,
                    )
                    status = response.status_code
                    submission = response.json().get("id") if status == 201 else None
                except requests.RequestException:
                    status, submission = 0, None
                took = time.monotonic() - began
                with lock:
                    sent.append(Sent(began - start, student, took, status, submission))
                    if len(sent) % max(1, plan.uploads // 20) == 0:
                        print(
                            f"  {len(sent)}/{plan.uploads} uploads sent ({began - start:.0f} s)",
                            flush=True,
                        )

    threads = [threading.Thread(target=client) for _ in range(plan.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


def _wait_drained(ids: list[str]) -> float:
    """Seconds until none of ``ids`` is queued or running (``inf`` past the limit)."""
    from submissions.models import Submission

    began = time.monotonic()
    waiting = Submission.objects.filter(
        pk__in=ids, status__in=[Submission.Status.QUEUED, Submission.Status.RUNNING]
    )
    last = -1
    while True:
        left = waiting.count()
        if not left:
            return time.monotonic() - began
        if left != last and (last < 0 or last - left >= 100):
            print(f"  {left} uploads still waiting ({time.monotonic() - began:.0f} s)", flush=True)
            last = left
        if time.monotonic() - began > DRAIN_LIMIT:
            return float("inf")
        time.sleep(1)


def _fairness(ids: list[str]) -> dict[str, Any]:
    """Waits by a student's first, second, third… upload, and first uploads overtaken."""
    from submissions.models import GradingRun, Submission

    started: dict[str, datetime] = {}
    runs = GradingRun.objects.filter(submission_id__in=ids, batch__isnull=True)
    for submission_id, at in runs.values_list("submission_id", "started_at"):
        key = str(submission_id)
        if at is not None and (key not in started or at < started[key]):
            started[key] = at
    rows = sorted(
        Submission.objects.filter(pk__in=ids).values_list("pk", "enrollment_id", "created_at"),
        key=lambda row: row[2],
    )
    ordinal: Counter[int] = Counter()
    waits: dict[int, list[float]] = {}
    uploads: list[tuple[int, datetime, datetime]] = []  # (ordinal, queued, started)
    for pk, enrollment, created in rows:
        ordinal[enrollment] += 1
        began = started.get(str(pk))
        if began is None:
            continue
        n = ordinal[enrollment]
        waits.setdefault(n, []).append((began - created).total_seconds())
        uploads.append((n, created, began))
    # A first upload is overtaken when a third upload queued after it started before it.
    thirds = sorted((queued, began) for n, queued, began in uploads if n >= 3)
    overtaken = 0
    for n, queued, began in uploads:
        if n == 1 and any(q > queued and b < began for q, b in thirds):
            overtaken += 1
    by_ordinal = {
        f"upload_{n}": {
            "count": len(values),
            "wait_p50_s": round(statistics.median(values), 1),
            "wait_p95_s": round(_percentile(values, 0.95) or 0.0, 1),
        }
        for n, values in sorted(waits.items())
    }
    return {"waits": by_ordinal, "firsts_overtaken": overtaken}


def _counts(ids: list[str]) -> dict[str, int]:
    from submissions.models import GradingRun

    graded = Counter(
        str(pk)
        for pk in GradingRun.objects.filter(
            submission_id__in=ids, outcome=GradingRun.Outcome.GRADED
        ).values_list("submission_id", flat=True)
    )
    return {
        "lost": sum(1 for pk in ids if graded[pk] == 0),
        "double": sum(1 for pk in ids if graded[pk] > 1),
    }


def _copy_pairs() -> int:
    """The copy pairs recorded: every student hands in the same model here, so all are true
    copies, bounded by ``COPIES_EXACT_PAIRS`` per upload (docs/staff.md, "Copies")."""
    from submissions.models import CopyPair

    return CopyPair.objects.count()


SWEEP_LINE = re.compile(r"^\[?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d+)\b.*\bsweep: ")


def _sweep_gaps(log: Path, busy_from: float, busy_to: float) -> dict[str, Any]:
    """The sweeps beat logged between ``busy_from`` and ``busy_to`` (wall-clock epoch seconds)
    and the longest gap between two of them."""
    times = []
    for line in log.read_text(errors="replace").splitlines():
        match = SWEEP_LINE.match(line)
        if match:
            at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
            times.append(at + int(match.group(2)) / 1000)
    inside = [t for t in times if busy_from <= t <= busy_to]
    edges = [busy_from, *inside, busy_to]
    gap = max(b - a for a, b in itertools.pairwise(edges))
    return {"sweeps_during_backlog": len(inside), "longest_gap_s": round(gap, 1)}


def run(plan: Plan) -> dict[str, Any]:
    stack = Stack("postgres", {**TIMINGS, **PRODUCTION, "CELERY_POLLING_INTERVAL": "0.1"})
    try:
        os.environ.update(stack.env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from benchmarks.bench_faults import _demo_model

        print(f"setting up {plan.students} students…", flush=True)
        slug, tokens = _setup(plan, stack)
        model = _demo_model(stack.tmp / "demo.pt2")
        web, web_port = stack.gunicorn()
        port = caddy(stack, web_port)
        workers = [
            stack.worker(f"rush{n}", concurrency=plan.concurrency, beat=n == 0)
            for n in range(plan.workers)
        ]
        sampler = Sampler(groups={"web": [web.pid], "workers": [p.pid for p in workers]})
        threading.Thread(target=sampler.run, daemon=True).start()
        url = f"http://127.0.0.1:{port}/api/challenges/{slug}/submissions/"
        print(
            f"sending {plan.uploads} uploads over {plan.window_s:.0f} s"
            f" ({plan.uploads // 3} in the final {plan.final_s:.0f} s)…",
            flush=True,
        )
        wall_start = time.time()
        sent = _send_all(plan, url, tokens, model)
        last_sent = max(s.at for s in sent)
        ids = [s.submission for s in sent if s.submission]
        print(f"all sent; waiting for {len(ids)} uploads to be graded…", flush=True)
        drain = _wait_drained(ids)
        wall_end = time.time()
        sampler.stop.set()
        for proc in [*workers, web]:
            kill_group(proc)
        latencies = [s.latency for s in sent if s.status]
        final = [s.latency for s in sent if s.status and s.at >= plan.window_s - 60]
        statuses = Counter(str(s.status) for s in sent)
        figures: dict[str, Any] = {
            "students": plan.students,
            "uploads": plan.uploads,
            "window_s": plan.window_s,
            "final_s": plan.final_s,
            "workers": plan.workers,
            "concurrency": plan.concurrency,
            "images": plan.images,
            "sent_in_s": round(last_sent, 1),
            "statuses": dict(sorted(statuses.items())),
            "web_p50_ms": _ms(_percentile(latencies, 0.5)),
            "web_p95_ms": _ms(_percentile(latencies, 0.95)),
            "web_max_ms": _ms(max(latencies) if latencies else None),
            "web_final_minute_p95_ms": _ms(_percentile(final, 0.95)),
            "drain_after_last_s": round(drain, 1),
            **_counts(ids),
            "copy_pairs": _copy_pairs(),
            **_fairness(ids),
            **_sweep_gaps(stack.tmp / "worker-rush0.log", wall_start + 2, wall_end),
            "load_avg_max": round(max(sampler.loads, default=0.0), 2),
            "cpu_busy_mean_pct": round(statistics.fmean(sampler.cpu), 1) if sampler.cpu else None,
            **sampler.memory(),
            "cores": os.cpu_count(),
        }
        return figures
    finally:
        stack.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="90 students, 270 uploads, 90 s")
    parser.add_argument("--students", type=int)
    parser.add_argument("--uploads", type=int)
    parser.add_argument("--minutes", type=float)
    parser.add_argument("--final-minutes", type=float)
    parser.add_argument("--threads", type=int, default=40)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--images", type=int, default=60)
    args, _ = parser.parse_known_args(argv)
    base = (90, 270, 1.5, 0.25) if args.quick else (1500, 4500, 15.0, 2.0)
    plan = Plan(
        students=args.students or base[0],
        uploads=args.uploads or base[1],
        window_s=60 * (args.minutes or base[2]),
        final_s=60 * (args.final_minutes or base[3]),
        threads=args.threads,
        workers=args.workers,
        concurrency=args.concurrency,
        images=args.images,
    )
    figures = run(plan)
    width = max(len(k) for k in figures)
    print()
    for key, value in figures.items():
        goal = f"   (goal: {GOALS[key]})" if key in GOALS else ""
        print(f"{key:<{width}}  {json.dumps(value)}{goal}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
