"""Two worker hosts on one machine: two Celery worker processes, each with its own folders
(``VAR_DIR``, ``MEDIA_ROOT``, temp dir, ``GRADER_DATA_ROOT`` with its own copy of the hidden test
sets) and its own sandbox uid, share only the database, the broker and an S3 store (moto's real
server). They drain one queue: every upload is graded exactly once, the models live only in the
bucket, and no copy stays on the web's or either worker's disk.

Its queues have a prefix of their own (``GRADER_QUEUE_PREFIX``), so the session's other worker
(conftest) never takes these jobs, and these workers never take its.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from courses.models import Challenge
from submissions.models import ApiToken, GradingRun, Submission
from tests.integration.conftest import (
    WORKER_READY_SECONDS,
    Worker,
    database_url,
    spawn_worker,
    stop_worker,
    wait_until_done,
)
from tests.objectstore import S3Server, start_s3_server
from tests.services import require_postgres, require_redis

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

QUEUE_PREFIX = "two-hosts-"
UPLOADS = 6
HOSTS = {"host-a": 60001, "host-b": 60002}


@pytest.fixture(scope="module")
def store() -> Iterator[S3Server]:
    server = start_s3_server(bucket="two-hosts")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hosts(
    django_db_setup: Any,
    django_db_blocker: Any,
    shared_dirs: dict[str, Path],
    store: S3Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[Worker, Path]]]:
    """Two workers as on two machines: what they share is the database, broker and store."""
    from django.db import connection

    if connection.vendor == "postgresql":
        require_postgres()
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        require_redis()
    started: dict[str, tuple[Worker, Path]] = {}
    for name, uid in HOSTS.items():
        home = tmp_path_factory.mktemp(name)
        for folder in ("var", "media", "tmp"):
            (home / folder).mkdir()
        # Its own copy of the hidden test sets, as a worker host keeps them.
        shutil.copytree(shared_dirs["hidden"], home / "hidden")
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("MEDIA_", "AWS_", "GRADER_", "CELERY_"))
        }
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "DATABASE_URL": database_url(),
                "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
                # The embedded broker is a folder: the one thing that cannot be per host.
                "CELERY_BROKER_DIR": str(settings.CELERY_BROKER_DIR),
                "CELERY_POLLING_INTERVAL": "0.1",
                "VAR_DIR": str(home / "var"),
                "MEDIA_ROOT": str(home / "media"),
                "TMPDIR": str(home / "tmp"),
                "GRADER_DATA_ROOT": str(home / "hidden"),
                "GRADER_SANDBOX": "true",
                "GRADER_SANDBOX_UID": str(uid),
                "GRADER_QUEUE_PREFIX": QUEUE_PREFIX,
                "PYTHONUNBUFFERED": "1",
                **store.env(),
            }
        )
        started[name] = (spawn_worker(env, f"{name}@%h"), home)
    try:
        for name, (worker, _) in started.items():
            if not worker.ready.wait(WORKER_READY_SECONDS):
                pytest.fail(f"worker {name} did not start:\n{worker.log()}")
        yield started
    finally:
        for worker, _ in started.values():
            stop_worker(worker)


def holding(folder: Path, digests: set[str]) -> list[Path]:
    """Files under ``folder`` whose content is one of the uploaded models."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() in digests:
            found.append(path)
    return found


def test_it_grades_each_upload_exactly_once_on_two_hosts_sharing_a_store(
    hosts: dict[str, tuple[Worker, Path]],
    store: S3Server,
    keypoints: Challenge,
    student: User,
    demo_models: dict[str, Path],
    settings: Any,
    tmp_path: Path,
) -> None:
    store.use_in(settings)
    settings.GRADER_QUEUE_PREFIX = QUEUE_PREFIX
    web_media = tmp_path / "web-media"
    web_media.mkdir()
    settings.MEDIA_ROOT = str(web_media)
    token = ApiToken.issue(student)
    models = [demo_models["keypoints_pass"], demo_models["keypoints_fail"]]

    ids = []
    for i in range(UPLOADS):
        with models[i % 2].open("rb") as fh:
            response = Client().post(
                f"/api/challenges/{keypoints.slug}/submissions/",
                {"file": fh},
                HTTP_AUTHORIZATION=f"Token {token}",
            )
        assert response.status_code == 201, response.content
        ids.append(response.json()["id"])
    any_worker = next(iter(hosts.values()))[0]
    done = [wait_until_done(pk, any_worker) for pk in ids]

    logs = "\n".join(f"--- {n}\n{w.log()}" for n, (w, _) in hosts.items())
    assert [d.status for d in done] == [Submission.Status.GRADED] * UPLOADS, logs
    assert [d.passed for d in done] == [True, False] * (UPLOADS // 2)
    runs = GradingRun.objects.filter(submission__in=ids)
    assert sorted(str(r.submission_id) for r in runs) == sorted(ids), "graded more than once"
    assert all(d.attempts == 1 for d in done)
    hosts_seen = {r.worker_host.split("@")[0] for r in runs}
    assert hosts_seen == set(HOSTS), f"not both hosts took jobs: {hosts_seen}\n{logs}"
    assert {r.runner for r in runs} == {"sandbox"}
    # The models are objects in the bucket, and nowhere on any host's disk.
    assert {d.file.name for d in done} <= set(store.object_names())
    digests = {d.sha256 for d in done}
    assert holding(web_media, digests) == []
    for name, (_, home) in hosts.items():
        assert holding(home, digests) == [], f"{name} kept a copy"
