"""A full disk while storing an upload (finding: an HTML 500 and a partial file left behind).

The disk is really full: MEDIA_ROOT is a 64 KiB tmpfs mounted for the test (the test runs as
root, as the grading hosts' tests do), so the write fails with the kernel's own ENOSPC after
writing part of the file, exactly as on a full volume. A storage class raising
OSError(ENOSPC) would test only our reading of an exception we made up.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from submissions.models import Submission
from submissions.services import STORAGE_MESSAGE
from tests.platform.test_api import post_model


@pytest.fixture
def full_disk(tmp_path: Path, settings) -> Iterator[Path]:
    media = tmp_path / "tiny-media"
    media.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(media)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.fail(f"this test mounts a tiny tmpfs and needs root: {mounted.stderr}")
    settings.MEDIA_ROOT = str(media)
    try:
        yield media
    finally:
        subprocess.run(["umount", str(media)], check=True)


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_it_answers_json_503_and_leaves_no_partial_file(
    full_disk, token, challenge, tiny_models, caplog
):
    assert tiny_models.zeros.stat().st_size > 64 * 1024  # it cannot fit

    response = post_model(Client(), challenge.slug, token, tiny_models.zeros)

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": STORAGE_MESSAGE, "code": "storage", "reason": "full"}
    assert response["Retry-After"] == "60"
    assert files_under(full_disk) == []
    assert not Submission.objects.exists()  # nothing charged to the quota
    assert "No space left on device" in caplog.text


def test_the_upload_page_says_what_happened(full_disk, student, challenge, tiny_models):
    client = Client()
    client.force_login(student)

    with tiny_models.zeros.open("rb") as fh:
        response = client.post(reverse("challenge_detail", args=[challenge.slug]), {"file": fh})

    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert "could not be stored because of a problem on our side" in response.content.decode()
    assert files_under(full_disk) == []
    assert not Submission.objects.exists()
