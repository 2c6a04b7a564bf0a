"""Uploads and pictures in an S3-compatible store (``MEDIA_STORAGE=s3``), against moto's real
S3 server process: private objects, pictures only through the app's views, the worker's
streamed and checked copy that does not outlive the job, clear start-up errors and 503s."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client

from grader.errors import PlatformError
from submissions.forms import STORE_DOWN_MESSAGE
from submissions.models import Submission
from submissions.results import submission_pictures_store
from tests.objectstore import S3Server, s3_server, start_s3_server  # noqa: F401
from tests.platform.conftest import graded, make_submission, model_upload
from worker.grading import fetched

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n" + b"picture" * 10


@pytest.fixture
def in_bucket(settings, s3_server: S3Server) -> S3Server:  # noqa: F811
    s3_server.use_in(settings)
    return s3_server


def auth(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Token {token}"}


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_it_stores_an_upload_as_a_private_object_and_nothing_on_disk(
    client, token, challenge, tiny_models, in_bucket, settings
):
    with tiny_models.zeros.open("rb") as fh:
        response = client.post(
            f"/api/challenges/{challenge.slug}/submissions/", {"file": fh}, **auth(token)
        )

    assert response.status_code == 201, response.content
    submission = Submission.objects.get(pk=response.json()["id"])
    assert submission.file.name in in_bucket.object_names()
    body = in_bucket.client().get_object(Bucket=in_bucket.bucket, Key=submission.file.name)
    assert hashlib.sha256(body["Body"].read()).hexdigest() == submission.sha256
    grants = in_bucket.client().get_object_acl(Bucket=in_bucket.bucket, Key=submission.file.name)
    assert [g["Permission"] for g in grants["Grants"]] == ["FULL_CONTROL"]
    assert all(g["Grantee"].get("Type") == "CanonicalUser" for g in grants["Grants"])
    assert files_under(Path(settings.MEDIA_ROOT)) == []


def test_it_serves_a_picture_from_the_bucket_only_through_the_app(
    client, student, outsider, enrollment, challenge, in_bucket
):
    submission = graded(enrollment, challenge, 1.0)
    submission_pictures_store(submission, {"samples": PNG})
    url = f"/submissions/{submission.pk}/samples.png"

    assert submission.pictures["samples"] in in_bucket.object_names()
    client.force_login(student)
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG
    assert "private" in response["Cache-Control"]
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    # Without the store's signature the object is not readable: no public bucket URLs.
    import urllib.error
    import urllib.request

    public = f"{in_bucket.endpoint}/{in_bucket.bucket}/{submission.pictures['samples']}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(public, timeout=10)
    assert refused.value.code == 403


def test_it_streams_the_model_and_keeps_no_copy_after_the_job(
    enrollment, challenge, in_bucket, tmp_path, monkeypatch
):
    content = b"model bytes " * 100_000
    submission = make_submission(enrollment, challenge, content=content)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()

    with fetched(submission) as path:
        assert path.read_bytes() == content
        assert path.is_relative_to(tmp_path / "tmp")

    assert files_under(tmp_path / "tmp") == []


def test_it_refuses_a_model_that_changed_in_the_bucket(enrollment, challenge, in_bucket):
    submission = make_submission(enrollment, challenge, content=b"the original")
    in_bucket.client().put_object(
        Bucket=in_bucket.bucket, Key=submission.file.name, Body=b"swapped"
    )

    with pytest.raises(PlatformError) as failed, fetched(submission):
        pass
    assert failed.value.code == "storage_checksum"


def test_it_passes_the_system_check_with_a_reachable_bucket(in_bucket):
    call_command("check")


def test_it_fails_the_system_check_for_a_missing_bucket(settings, s3_server):  # noqa: F811
    s3_server.use_in(settings, bucket_name="no-such-bucket")

    with pytest.raises(SystemCheckError, match="bucket 'no-such-bucket' does not exist"):
        call_command("check")


def test_it_fails_the_system_check_for_wrong_credentials(settings, s3_server):  # noqa: F811
    s3_server.use_in(settings, access_key="AKIAWRONGWRONGWRONG", secret_key="wrong")

    with pytest.raises(SystemCheckError, match="refused the credentials"):
        call_command("check")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"AWS_STORAGE_BUCKET_NAME": "no-such-bucket"}, "does not exist"),
        ({"AWS_SECRET_ACCESS_KEY": "wrong"}, "refused the credentials"),
    ],
)
def test_it_stops_a_worker_at_start_up_without_its_bucket(
    s3_server,  # noqa: F811
    overrides,
    says,
    tmp_path,
):
    env = {
        **os.environ,
        **s3_server.env(**overrides),
        "VAR_DIR": str(tmp_path / "var"),
        "CELERY_BROKER_URL": "filesystem://",
    }
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker", "worker", "--without-mingle"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode != 0
    assert "worker start-up: MEDIA_STORAGE=s3: " in done.stderr + done.stdout
    assert says in done.stderr + done.stdout


@pytest.fixture
def stopped_store(settings) -> S3Server:
    """A store that was there and is gone (its process ended): every request is refused."""
    server = start_s3_server()
    server.use_in(settings)
    server.stop()
    return server


def test_it_answers_the_api_503_and_stores_no_row_while_the_store_is_down(
    client, token, challenge, tiny_models, stopped_store, sent
):
    with tiny_models.zeros.open("rb") as fh:
        response = client.post(
            f"/api/challenges/{challenge.slug}/submissions/", {"file": fh}, **auth(token)
        )

    assert response.status_code == 503
    assert response.json() == {
        "error": STORE_DOWN_MESSAGE,
        "code": "storage",
        "reason": "unavailable",
    }
    assert response["Retry-After"] == "60"
    assert Submission.objects.count() == 0
    assert sent == []


def test_it_answers_the_upload_form_503_and_stores_no_row_while_the_store_is_down(
    student, enrollment, challenge, tiny_models, stopped_store, sent
):
    client = Client()
    client.force_login(student)

    response = client.post(
        f"/challenges/{challenge.slug}/", {"file": model_upload(tiny_models.zeros)}
    )

    # A page that says what happened, not the API's JSON.
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert STORE_DOWN_MESSAGE in response.content.decode()
    assert Submission.objects.count() == 0
    assert sent == []
