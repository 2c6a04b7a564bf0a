"""A broker of a test's own: a redis-server on a free port that the test may stop and start, or
a private folder for the ``filesystem://`` transport; and pointing this process's Celery app at
it, so messages reach only the workers the test starts."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from config.celery import app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server of the test's own, which the test may stop and start again."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        pytest.fail("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def messages(self, device: str = "cpu") -> list[str]:
        """Task names of the messages waiting in the queue of ``device``'s workers."""
        from submissions.doorbell import queue_for

        raw = redis.Redis.from_url(self.url).lrange(queue_for(device), 0, -1)
        return [json.loads(m)["headers"]["task"] for m in raw]


def forget_connections() -> None:
    """Drop the app's pooled broker connections, as a fresh process would have none."""
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def app_sending_to(
    monkeypatch: pytest.MonkeyPatch, url: str, transport_options: dict[str, Any]
) -> Iterator[None]:
    """This process's Celery app sends, for real, to ``url``."""
    # Undo the platform tests' recorder, where there is one.
    monkeypatch.setattr(app, "send_task", types.MethodType(Celery.send_task, app))
    # Celery reads the broker from the environment first, then the settings' own names.
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    changed: dict[str, Any] = {
        "broker_url": url,
        "broker_transport_options": transport_options,
        # Give up on a dead broker within a second or two rather than Celery's long default.
        "broker_connection_timeout": 1.0,
        "task_publish_retry_policy": {"max_retries": 1},
    }
    changed.update({f"CELERY_{key.upper()}": value for key, value in changed.items()})
    before = {key: app.conf.get(key) for key in changed}
    app.conf.update(changed)
    forget_connections()
    try:
        yield
    finally:
        app.conf.update(before)
        forget_connections()


def filesystem_options(folder: Path) -> dict[str, Any]:
    """The ``filesystem://`` transport's folders under ``folder``, as the settings make them."""
    queue = folder / "queue"
    for path in (queue, folder / "processed", folder / "control"):
        path.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(queue),
        "data_folder_out": str(queue),
        "processed_folder": str(folder / "processed"),
        "store_processed": False,
        "control_folder": str(folder / "control"),
        "polling_interval": 0.1,
    }
