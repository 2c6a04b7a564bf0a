"""A real Celery worker process grading against the test database.

The stack is whatever the settings say: the embedded default (SQLite file + ``filesystem://``
broker) in a plain ``pytest`` run, PostgreSQL + Redis when ``DATABASE_URL`` and
``CELERY_BROKER_URL`` point there (``make test`` runs this folder a second time that way).
The worker is a subprocess started once per session, after the test database exists and
stopped before it is dropped; it grades in the real sandbox.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from courses.models import Challenge, Enrollment, Semester
from submissions.models import Submission
from tests.brokers import RedisServer, app_sending_to, filesystem_options
from tests.services import require_postgres, require_redis

ROOT = Path(__file__).resolve().parents[2]
WORKER_READY_SECONDS = 90
GRADED_WITHIN_SECONDS = 120


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here runs a real worker: marked ``integration`` (a conftest's ``pytestmark``
    would mark nothing)."""
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.path)).is_relative_to(here):
            item.add_marker(pytest.mark.integration)


def database_url() -> str:
    """The test database (pytest-django renamed it) as a URL the worker's settings can read."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    auth = f"{user}:{db['PASSWORD']}" if db.get("PASSWORD") else user
    host = f"{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
    return f"postgres://{auth}@{host}/{db['NAME']}"


@pytest.fixture(scope="session")
def shared_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Uploads and hidden data that the test process and the worker both see."""
    root = tmp_path_factory.mktemp("integration")
    dirs = {"media": root / "media", "hidden": root / "hidden"}
    for path in dirs.values():
        path.mkdir()
    from eval_data import get_kind
    from eval_data.manifest import write_manifest

    for task, count in (("keypoints", 60), ("segmentation", 6), ("classification", 100)):
        folder = dirs["hidden"] / "it" / task
        folder.mkdir(parents=True)
        get_kind(task).synth(folder, count, 99)
        write_manifest(folder, task)
    return dirs


class Worker:
    """A Celery process (a worker, or beat) whose output is read line by line as it comes."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if " ready." in line:
                self.ready.set()

    def log(self) -> str:
        return "".join(self.lines[-80:])


def spawn_worker(env: dict[str, str], hostname: str, args: tuple[str, ...] = ()) -> Worker:
    """A Celery worker process with exactly ``env``, started and not yet waited for."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker",
            "worker",
            "--loglevel=INFO",
            "--concurrency=1",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            f"--hostname={hostname}",
            *args,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    return Worker(proc)


def process_env(shared_dirs: dict[str, Path], env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker or beat process against the test database and broker."""
    if connection.vendor == "postgresql":
        require_postgres()
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        require_redis()
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_BROKER_DIR": str(settings.CELERY_BROKER_DIR),
        "CELERY_POLLING_INTERVAL": "0.1",
        "MEDIA_ROOT": str(shared_dirs["media"]),
        "GRADER_DATA_ROOT": str(shared_dirs["hidden"]),
        "GRADER_SANDBOX": "true",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }


def start_beat(shared_dirs: dict[str, Path], tmp: Path, env: dict[str, str]) -> Worker:
    """``celery -A worker beat`` against the test database and ``env``'s broker, its output
    read as it comes (``Worker.lines``)."""
    schedule = f"--schedule={tmp / 'beat-schedule'}"
    return Worker(
        subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", "beat", "--loglevel=INFO", schedule],
            cwd=ROOT,
            env=process_env(shared_dirs, env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    )


def start_worker(
    shared_dirs: dict[str, Path],
    *,
    hostname: str = "integration@%h",
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> Worker:
    """A Celery worker process against the test database, ready to take work."""
    worker = spawn_worker(process_env(shared_dirs, env), hostname, args)
    if not worker.ready.wait(WORKER_READY_SECONDS):
        worker.proc.kill()
        pytest.fail(f"the Celery worker did not start:\n{worker.log()}")
    return worker


def stop_worker(worker: Worker) -> None:
    if worker.proc.poll() is not None:
        return
    worker.proc.terminate()
    try:
        worker.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.proc.kill()


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup: Any, django_db_blocker: Any, shared_dirs: dict[str, Path]
) -> Iterator[Worker]:
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        require_redis()
        # Messages of an earlier, aborted run must not be graded against this database.
        import redis

        redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    worker = start_worker(shared_dirs)
    yield worker
    stop_worker(worker)


@pytest.fixture(autouse=True)
def integration_settings(settings: Any, shared_dirs: dict[str, Path]) -> Any:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = str(shared_dirs["media"])
    settings.GRADER_DATA_ROOT = shared_dirs["hidden"]
    return settings


@pytest.fixture(autouse=True)
def committed(transactional_db: None) -> None:
    """Every test here is transactional: another thread or process (the live server, a
    worker) must see the rows it makes, so ``db`` (the shared ``course``) is this one too."""


def make_challenge(semester: Semester, task: str) -> Challenge:
    return Challenge.objects.create(
        semester=semester,
        **Challenge.defaults_for(task),
        task=task,
        slug=f"{task}-{semester.slug}",
        title=task.title(),
        deadline=timezone.now() + timedelta(days=7),
        data_dir=f"it/{task}",
        daily_quota=10,
        time_limit_seconds=120,
    )


@pytest.fixture
def keypoints(semester: Semester) -> Challenge:
    return make_challenge(semester, "keypoints")


@pytest.fixture
def segmentation(semester: Semester) -> Challenge:
    return make_challenge(semester, "segmentation")


@pytest.fixture
def classification(semester: Semester) -> Challenge:
    return make_challenge(semester, "classification")


@pytest.fixture
def student(semester: Semester) -> User:
    user = User.objects.create_user("student", "student@example.com", "student")
    Enrollment.objects.create(user=user, semester=semester)
    return user


def wait_until_done(submission_id: Any, worker: Worker) -> Submission:
    """Poll the database, as the student's page does, until the worker has finished."""
    finished = Submission.objects.filter(
        pk=submission_id, status__in=(Submission.Status.GRADED, Submission.Status.FAILED)
    )
    wait_for(finished.exists, worker, f"grading submission {submission_id}")
    return Submission.objects.get(pk=submission_id)


def wait_for(
    condition: Callable[[], object],
    worker: Worker,
    what: str,
    seconds: float = GRADED_WITHIN_SECONDS,
) -> None:
    """Poll ``condition`` until it holds; fail with the worker's log after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen in time; worker log:\n{worker.log()}")
        time.sleep(0.1)


# --- a broker of a test's own ---------------------------------------------------------------


class PrivateBroker:
    def __init__(self, url: str, env: dict[str, str], options: dict[str, Any]) -> None:
        self.url, self.env, self.options = url, env, options


@pytest.fixture
def private_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateBroker]:
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        server = RedisServer(tmp_path)
        server.start()
        broker = PrivateBroker(server.url, {"CELERY_BROKER_URL": server.url}, {})
        with app_sending_to(monkeypatch, broker.url, broker.options):
            yield broker
        server.stop()
        return
    folder = tmp_path / "broker"
    options = filesystem_options(folder)
    broker = PrivateBroker(
        "filesystem://",
        {"CELERY_BROKER_URL": "filesystem://", "CELERY_BROKER_DIR": str(folder)},
        options,
    )
    with app_sending_to(monkeypatch, broker.url, options):
        yield broker


@pytest.fixture(scope="session")
def quick_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid keypoints model (every keypoint at the centre) exported in seconds, for tests
    about the order of gradings rather than their scores (the demo models train for minutes)."""
    import torch
    from torch import nn

    class Centre(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Linear(96 * 96, 30)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(x.flatten(1))

    path = tmp_path_factory.mktemp("quick-model") / "centre.pt2"
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(
        Centre().eval(), (torch.zeros(2, 1, 96, 96),), dynamic_shapes=({0: batch},)
    )
    torch.export.save(program, str(path))
    return path
