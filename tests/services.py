"""Reaching the real services some tests need: PostgreSQL and Redis on 127.0.0.1.

A missing service fails the test with a message saying what to start; it never skips, so a CI
run without its services cannot pass by testing less. ``make test`` runs the platform and
integration tests a second time with ``DATABASE_URL`` and ``CELERY_BROKER_URL`` pointing here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from typing import Any

import pytest
import requests


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if not _reachable(host, port):
        pytest.fail(
            f"{name} is not reachable at {host}:{port}; start it (CI={os.environ.get('CI', '')!r})",
            pytrace=False,
        )


def require_postgres() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)


def require_redis() -> None:
    require_service("Redis", "127.0.0.1", 6379)


def answering(url: str, proc: subprocess.Popen[Any], seconds: float) -> bool:
    """Wait until a peer the test started (an OpenID provider, a SAML IdP, an LTI platform)
    answers ``url`` with a success; False once its process exits or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if requests.get(url, timeout=2).ok:
                return True
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.1)
