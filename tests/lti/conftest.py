"""The LTI tests' peer: a real LTI 1.3 platform process (``tests.lti.platform_app``), started
once per session on a free port of 127.0.0.1."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from lti_tool.models import LtiRegistration

from tests.lti.peer import CLIENT_ID, DEPLOYMENT_ID, PlatformPeer, platform_process


@pytest.fixture(autouse=True)
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Any], dict[str, Any]]]:
    """Tasks for the broker, recorded instead of sent (a worker runs them in
    ``tests/integration/test_lti.py``)."""
    from config.celery import app

    messages: list[tuple[str, list[Any], dict[str, Any]]] = []

    def send_task(name: str, args: Any = None, **options: Any) -> None:
        messages.append((name, list(args or []), options))

    monkeypatch.setattr(app, "send_task", send_task)
    return messages


@pytest.fixture(scope="session")
def platform() -> Iterator[PlatformPeer]:
    with platform_process() as peer:
        yield peer


def register(platform: PlatformPeer, site: str) -> dict[str, str]:
    """``lti_register`` as staff run it, and the platform configured with what it printed."""
    out = StringIO()
    call_command(
        "lti_register",
        "--issuer", platform.base,
        "--client-id", CLIENT_ID,
        "--deployment-id", DEPLOYMENT_ID,
        "--auth-url", f"{platform.base}/auth",
        "--token-url", f"{platform.base}/token",
        "--keyset-url", f"{platform.base}/jwks",
        "--name", "Test LMS",
        "--site-url", site,
        stdout=out,
    )  # fmt: skip
    urls: dict[str, str] = json.loads(out.getvalue())
    platform.use_tool(site, urls["login_url"])
    return urls


@pytest.fixture
def registered(db: None, platform: PlatformPeer) -> dict[str, str]:
    return register(platform, "http://testserver")


def login_path(urls: dict[str, str]) -> str:
    return re.sub(r"^https?://[^/]+", "", urls["login_url"])


def start(
    client: Client, platform: PlatformPeer, urls: dict[str, str], **spec: Any
) -> dict[str, str]:
    """The OIDC login initiation and the platform's answer: the form the browser would post."""
    spec.setdefault("sub", "lms-user-1")
    spec.setdefault("roles", ["Learner"])
    _, query = platform.hint(**spec)
    answer = client.get(f"{login_path(urls)}?{query}")
    assert answer.status_code == 302, answer.content
    return platform.authorise(answer["Location"])


def post_launch(client: Client, form: dict[str, str]) -> Any:
    return client.post("/lti/launch/", {"id_token": form["id_token"], "state": form["state"]})


def launch(client: Client, platform: PlatformPeer, urls: dict[str, str], **spec: Any) -> Any:
    return post_launch(client, start(client, platform, urls, **spec))


def signed_in_user_id(client: Client) -> Any:
    return client.session.get("_auth_user_id")


def registration() -> LtiRegistration:
    return LtiRegistration.objects.get()


def challenge_in(semester: Any, slug: str, task: str = "keypoints", **extra: Any) -> Any:
    from datetime import timedelta

    from django.utils import timezone

    from courses.models import Challenge

    return Challenge.objects.create(
        semester=semester,
        **{**Challenge.defaults_for(task), **extra},
        task=task,
        slug=slug,
        title=f"Challenge {slug}",
        deadline=timezone.now() + timedelta(days=7),
        data_dir=f"it/{task}",
    )


@pytest.fixture
def challenge(semester: Any) -> Any:
    return challenge_in(semester, "keypoints-ws2026")


def graded_upload(enrollment: Any, challenge: Any, score: float, **fields: Any) -> Any:
    """A graded submission row, as a worker leaves it (the standing follows by signal)."""
    import hashlib
    import uuid

    from django.core.files.base import ContentFile
    from django.utils import timezone

    from submissions.models import Submission

    now = timezone.now()
    fields.setdefault("metrics", {"score": score, "mse": 1 / (2 * score)})
    submission = Submission(
        id=uuid.uuid4(),
        enrollment=enrollment,
        challenge=challenge,
        sha256=hashlib.sha256(b"m").hexdigest(),
        size=1,
        format="pt2",
        status=Submission.Status.GRADED,
        score=score,
        passed=score >= challenge.threshold,
        created_at=now,
        queued_at=now,
        finished_at=now,
        **fields,
    )
    submission.file.save("upload.bin", ContentFile(b"m"), save=False)
    submission.save(force_insert=True)
    return submission
