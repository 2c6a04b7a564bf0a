"""``manage.py backup DIR``: a database snapshot and a manifest of the stored objects."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from submissions.results import submission_pictures_store
from tests.platform.conftest import graded

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_writes_the_database_and_a_manifest_with_checksums(tmp_path, enrollment, challenge):
    submission = graded(enrollment, challenge, 2.0)
    submission_pictures_store(submission, {"samples": b"png bytes"})
    out = io.StringIO()

    call_command("backup", str(tmp_path / "b"), stdout=out)

    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["engine"] == connection.vendor
    dump = tmp_path / "b" / manifest["database"]["file"]
    assert hashlib.sha256(dump.read_bytes()).hexdigest() == manifest["database"]["sha256"]
    assert manifest["objects"] == sorted(
        [
            {
                "name": submission.file.name,
                "sha256": submission.sha256,
                "size": submission.size,
            },
            {
                "name": submission.pictures["samples"],
                "sha256": hashlib.sha256(b"png bytes").hexdigest(),
                "size": 9,
            },
        ],
        key=lambda o: o["name"],
    )
    assert "objects: 2/2 checksummed" in out.getvalue()
    # Password hashes and API tokens: for the owner's eyes only.
    assert (tmp_path / "b").stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "b").iterdir()} == {0o600}
    assert "backed up to" in out.getvalue()


def test_it_refuses_a_folder_that_is_not_empty(tmp_path, db):
    (tmp_path / "old").write_text("x")

    with pytest.raises(CommandError, match="not empty"):
        call_command("backup", str(tmp_path), stdout=io.StringIO())


def test_it_refuses_when_a_stored_object_is_missing(tmp_path, enrollment, challenge):
    submission = graded(enrollment, challenge, 2.0)
    submission.file.storage.delete(submission.file.name)

    with pytest.raises(CommandError, match="missing from the store"):
        call_command("backup", str(tmp_path / "b"), stdout=io.StringIO())
