"""``manage.py restore DIR``: a backup brought back into a fresh database gives the same boards,
grade books and rows. The restore and the reading-back run as processes of their own against a
new database (a second PostgreSQL database, or a new SQLite file), as on a rebuilt host."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from submissions.results import submission_pictures_store
from tests.integration.conftest import database_url
from tests.platform.backup_boards import site_state
from tests.platform.conftest import graded, make_submission

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_database(transactional_db: Any, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database on the same server as the test database."""
    if connection.vendor == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.sqlite3'}"
        return
    name = f"restore_{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url().rsplit("/", 1)[0] + f"/{name}"
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(database: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def seeded(enrollment, other_student, challenge, semester) -> None:
    """Two students with graded, failed and queued uploads, a picture, standings."""
    from tests.platform.conftest import make_challenge

    other = other_student.enrollments.get()
    graded(enrollment, challenge, 3.0, minutes_ago=30)
    best = graded(enrollment, challenge, 5.0, minutes_ago=20)
    submission_pictures_store(best, {"samples": b"a picture"})
    graded(other, challenge, 4.0, minutes_ago=10)
    make_submission(other, challenge, status="failed", error="no good")
    make_submission(enrollment, challenge)
    second = make_challenge(semester, slug="keypoints-2", title="Keypoints 2")
    graded(other, second, 1.0)


def test_it_brings_back_every_board_and_grade_book_in_a_fresh_database(
    seeded, fresh_database, tmp_path
):
    before = site_state()
    backup_dir = tmp_path / "backup"
    call_command("backup", str(backup_dir), stdout=io.StringIO())

    migrated = manage(fresh_database, "manage.py", "restore", str(backup_dir))
    assert migrated.returncode == 0, migrated.stderr
    assert "objects: 7/7 checked" in migrated.stdout
    assert "restored from" in migrated.stdout
    after = manage(fresh_database, "-m", "tests.platform.backup_boards")
    assert after.returncode == 0, after.stderr

    assert json.loads(after.stdout) == before
    assert before["boards"]["keypoints-ws2026"][0]["score"] == 5.0
    assert before["counts"]["submissions.Submission"] == 6


def test_it_refuses_a_database_that_is_not_empty(seeded, tmp_path):
    call_command("backup", str(tmp_path / "backup"), stdout=io.StringIO())

    done = manage(database_url(), "manage.py", "restore", str(tmp_path / "backup"))

    assert done.returncode != 0
    assert "is not empty" in done.stderr


def test_it_reports_stored_objects_that_are_gone(seeded, fresh_database, tmp_path):
    call_command("backup", str(tmp_path / "backup"), stdout=io.StringIO())
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    gone = manifest["objects"][0]["name"]
    (Path(settings.MEDIA_ROOT) / gone).unlink()

    done = manage(fresh_database, "manage.py", "restore", str(tmp_path / "backup"))

    assert done.returncode != 0
    assert f"1 are missing ({gone})" in done.stderr
