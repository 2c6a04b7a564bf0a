"""Starting the test platform (``tests.lti.platform_app``) and talking to it."""

from __future__ import annotations

import html
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from tests.services import answering

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "leaderboard-tool"
DEPLOYMENT_ID = "deployment-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PlatformPeer:
    def __init__(self, base: str, proc: subprocess.Popen[str]) -> None:
        self.base = base
        self.proc = proc

    def configure(self, **body: Any) -> None:
        requests.post(f"{self.base}/_configure", json=body, timeout=10).raise_for_status()

    def use_tool(self, site: str, login_url: str) -> None:
        """Point the platform at a tool: its login URL (with the registration's uuid), its
        launch URL and key set, as an admin enters them in an LMS; every test starts the
        platform's grade book, roster and received deep links afresh."""
        self.configure(
            reset=True,
            config={
                "client_id": CLIENT_ID,
                "deployment_id": DEPLOYMENT_ID,
                "login_url": login_url,
                "launch_url": f"{site}/lti/launch/",
                "jwks_url": f"{site}/lti/jwks/",
            },
        )

    def hint(self, **spec: Any) -> tuple[str, str]:
        """(hint, the query string of the login initiation) for a launch like ``spec``."""
        answer = requests.post(f"{self.base}/_hint", json=spec, timeout=10)
        answer.raise_for_status()
        data = answer.json()
        return data["hint"], data["login"]

    def launch_url(self, **spec: Any) -> str:
        """What a person clicks in the course to open the tool."""
        hint, _ = self.hint(**spec)
        return f"{self.base}/launch?{urlencode({'hint': hint})}"

    def state(self) -> dict[str, Any]:
        answer = requests.get(f"{self.base}/_state", timeout=10)
        answer.raise_for_status()
        return dict(answer.json())

    def authorise(self, location: str) -> dict[str, str]:
        """Follow the tool's redirect to the authorisation endpoint as a browser would and read
        the auto-submitting form: its action, id_token and state."""
        page = requests.get(location, timeout=10)
        page.raise_for_status()
        action = re.search(r'action="([^"]+)"', page.text)
        fields = dict(re.findall(r'name="(id_token|state)" value="([^"]*)"', page.text))
        assert action is not None, page.text
        return {
            "action": html.unescape(action.group(1)),
            **{k: html.unescape(v) for k, v in fields.items()},
        }


@contextmanager
def platform_process() -> Iterator[PlatformPeer]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.lti.platform_app", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    if not answering(f"{base}/jwks", proc, 60):
        proc.kill()
        out = proc.stdout.read() if proc.stdout else ""
        raise RuntimeError(f"the test platform did not start:\n{out}")
    try:
        yield PlatformPeer(base, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
