"""How fast a job recovers from ``kill -9`` of its worker: ``python -m benchmarks.bench_faults``.

On the embedded default (SQLite file + ``filesystem://`` broker in a fresh temporary VAR_DIR;
with ``DATABASE_URL`` and ``CELERY_BROKER_URL`` set, on those instead), with the production
timings (heartbeat 5 s, dead after 30 s, sweep every 15 s): a worker with embedded beat starts
grading the course's seed-size keypoint model on 300 images, is killed with ``kill -9`` (its
whole process group: main process, pool, sandbox) as soon as its heartbeat shows the job, and
a second worker is started at once. It prints the seconds from the kill, and from the second
worker being up, until the submission is graded, and how many gradings it got (goal: one
graded run, 90 s at most from a worker being up plus the grading itself).

Only this first of the issue's fault scenarios is measured here; the broker restart, the
database restart and the deadline rush through gunicorn are not (yet) in this benchmark.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = 300


def start_worker(env: dict[str, str], name: str) -> tuple[subprocess.Popen[str], float]:
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker", "worker", "-B", "--loglevel=INFO",
         "--concurrency=1", "--without-mingle", "--without-gossip", "--without-heartbeat",
         f"--hostname={name}@%h", f"--schedule={env['VAR_DIR']}/beat-{name}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if " ready." in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(180):
        proc.kill()
        raise SystemExit(f"worker {name} did not start")
    return proc, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__).parse_known_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    env = {
        **os.environ,
        "VAR_DIR": str(tmp),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "GRADER_DATA_ROOT": str(tmp / "hidden"),
        "MEDIA_ROOT": str(tmp / "media"),
        "CELERY_POLLING_INTERVAL": "0.1",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.files.base import ContentFile
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from datetime import timedelta

    from django.contrib.auth.models import User
    from django.utils import timezone

    from benchmarks.bench_sandbox import export
    from courses.models import Challenge, Course, Enrollment, Semester
    from eval_data import get_kind
    from eval_data.manifest import write_manifest
    from submissions.models import GradingRun, Submission, WorkerHeartbeat
    from submissions.services import submission_create

    folder = tmp / "hidden" / "bench" / "keypoints"
    folder.mkdir(parents=True)
    get_kind("keypoints").synth(folder, IMAGES, 5)
    write_manifest(folder, "keypoints")
    course = Course.objects.create(slug="bench", title="Bench", timezone="Europe/Berlin")
    semester = Semester.objects.create(
        course=course, slug="b", title="B", starts_on="2026-10-01", is_current=True
    )
    challenge = Challenge.objects.create(
        semester=semester, **Challenge.defaults_for("keypoints"), task="keypoints",
        slug="bench-keypoints", title="Keypoints", deadline=timezone.now() + timedelta(days=1),
        data_dir="bench/keypoints", daily_quota=10, time_limit_seconds=300,
    )  # fmt: skip
    user = User.objects.create_user("student", "", "x")
    enrollment = Enrollment.objects.create(user=user, semester=semester)
    data = export(tmp / "seed.pt2")

    first, _ = start_worker(env, "first")
    upload = ContentFile(data, name="seed.pt2")
    submission = submission_create(
        enrollment=enrollment, challenge=challenge, upload=upload, fmt="pt2"
    )
    job = f"submission {submission.pk}"
    while not WorkerHeartbeat.objects.filter(current_job=job).exists():
        time.sleep(0.02)
    os.killpg(first.pid, signal.SIGKILL)
    killed = time.monotonic()
    first.wait()
    second, took_to_start = start_worker(env, "second")
    up = time.monotonic()
    try:
        while Submission.objects.get(pk=submission.pk).status != Submission.Status.GRADED:
            if time.monotonic() - killed > 600:
                raise SystemExit("not graded within 10 minutes")
            time.sleep(0.2)
    finally:
        done = time.monotonic()
        os.killpg(second.pid, signal.SIGTERM)
        try:
            second.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(second.pid, signal.SIGKILL)
            second.wait()
    runs = GradingRun.objects.filter(submission=submission)
    graded = runs.filter(outcome=GradingRun.Outcome.GRADED)
    last = graded.first()
    seconds = last.seconds if last is not None and last.seconds is not None else float("nan")
    print(f"kill -9 mid-job, {IMAGES} images, second worker took {took_to_start:.1f} s to start")
    print(f"  graded {done - killed:.1f} s after the kill, {done - up:.1f} s after a worker was up")
    print(f"  its own grading took {seconds:.1f} s; graded runs: {graded.count()}"
          f" (all runs: {', '.join(r.outcome for r in runs.order_by('attempt'))})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
