"""Oversized request bodies are refused with 413 before anything reads them, over a real socket
(live_server): a 300 MB Content-Length with a tiny body is answered at once, and nothing is
written to the upload folder."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlparse

import pytest

from leaderboard.body_limit import FORM_MARGIN, MB, forget_limit

HUGE = 300 * MB


@pytest.fixture(autouse=True)
def fresh_limit():
    forget_limit()
    yield
    forget_limit()


@pytest.fixture
def spool(settings, tmp_path):
    folder = tmp_path / "spool"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder


def raw_request(
    server: str, head: str, body: bytes = b"", timeout: float = 5
) -> tuple[bytes, float]:
    """Send ``head`` and ``body`` on a fresh socket: the answer, and how long it took."""
    url = urlparse(server)
    started = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        answer = sock.recv(65536)
        seconds = time.monotonic() - started
        # The rest of the answer; the test server then drains the unread body (gunicorn closes
        # instead), so the socket stays open: stop once nothing more arrives.
        sock.settimeout(0.5)
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
    return answer, seconds


def post_head(path: str, length: int, extra: str = "") -> str:
    return (
        f"POST {path} HTTP/1.1\nHost: localhost\nContent-Type: multipart/form-data; boundary=x\n"
        f"Content-Length: {length}\n{extra}"
    )


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/", "/challenges/any/upload/"])
def test_it_refuses_a_huge_body_at_once_without_reading_it(live_server, challenge, spool, path):
    answer, seconds = raw_request(live_server.url, post_head(path, HUGE), b"--x\r\n")

    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert seconds < 1
    assert b"Request too large" in answer
    assert list(spool.iterdir()) == []


def test_it_answers_the_api_in_json(live_server, challenge, spool):
    head = post_head(f"/api/challenges/{challenge.slug}/submissions/", HUGE)

    answer, _ = raw_request(live_server.url, head, b"--x\r\n")

    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"code": "too_large"' in answer


def test_the_limit_follows_the_largest_challenge(challenge, client, db):
    limit = challenge.max_file_mb * MB + FORM_MARGIN

    just_under = client.post(
        "/accounts/login/", data=b"", content_type="text/plain", CONTENT_LENGTH=str(limit)
    )
    over = client.post(
        "/accounts/login/", data=b"", content_type="text/plain", CONTENT_LENGTH=str(limit + 1)
    )

    assert just_under.status_code != 413
    assert over.status_code == 413
    challenge.max_file_mb *= 2
    challenge.save()
    forget_limit()
    assert (
        client.post(
            "/accounts/login/", data=b"", content_type="text/plain", CONTENT_LENGTH=str(limit + 1)
        ).status_code
        != 413
    )


def test_it_refuses_a_malformed_length(client, db):
    response = client.post(
        "/accounts/login/", data=b"", content_type="text/plain", CONTENT_LENGTH="²"
    )

    assert response.status_code == 400
