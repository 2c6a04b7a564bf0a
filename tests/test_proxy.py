"""The reverse proxy for real: Debian's caddy runs deploy/Caddyfile on loopback in front of a
real gunicorn with deploy/gunicorn.conf.py (three sync workers), ports templated through the
environment the Caddyfile reads.

Three clients send a POST's headers and then trickle its body. Straight at gunicorn they hold
all three workers, and ``GET /`` gets no answer (the control: this test can fail); through the
proxy, which reads bodies whole before gunicorn sees a request, ``GET /`` answers within 1 s.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port} after {seconds} s")


@contextmanager
def running(args: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Stack:
    gunicorn: int
    proxy: int


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    caddy = shutil.which("caddy")
    assert caddy, "caddy is missing: run `make install-dev` (Debian package caddy)"
    tmp = tmp_path_factory.mktemp("proxy")
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "VIRTUAL_ENV")}
    app_env = {**base, "VAR_DIR": str(tmp / "var"), "DEBUG": "true", "HOME": str(tmp)}
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"],
        cwd=ROOT,
        env=app_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr
    ports = Stack(gunicorn=free_port(), proxy=free_port())
    gunicorn_env = {**app_env, "GUNICORN_BIND": f"127.0.0.1:{ports.gunicorn}"}
    caddy_env = {
        **base,
        "HOME": str(tmp),
        "XDG_DATA_HOME": str(tmp / "data"),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "SITE_ADDRESS": f"http://127.0.0.1:{ports.proxy}",
        "UPSTREAM": f"127.0.0.1:{ports.gunicorn}",
    }
    gunicorn = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application",
        "-c", "deploy/gunicorn.conf.py",
    ]  # fmt: skip
    proxy = [caddy, "run", "--config", "deploy/Caddyfile", "--adapter", "caddyfile"]
    with ExitStack() as stack:
        stack.enter_context(running(gunicorn, gunicorn_env, ports.gunicorn, tmp / "gunicorn.log"))
        stack.enter_context(running(proxy, caddy_env, ports.proxy, tmp / "caddy.log"))
        yield ports


@contextmanager
def slow_bodies(port: int, count: int = 3) -> Iterator[None]:
    """``count`` POSTs whose headers arrive at once and whose body never finishes.

    With a CSRF cookie (a client sets whatever it likes) the sign-in view reads the body, so a
    gunicorn worker waits for it.
    """
    sockets = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(
                b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Cookie: csrftoken=" + b"a" * 32 + b"\r\n"
                b"Content-Length: 100000\r\n\r\nusername=a"
            )
            sockets.append(sock)
        time.sleep(0.5)  # let each reach a worker (or the proxy's buffer)
        yield
    finally:
        for sock in sockets:
            sock.close()


def get_home(port: int, timeout: float) -> tuple[int, float]:
    started = time.monotonic()
    url = f"http://127.0.0.1:{port}/"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, time.monotonic() - started


def test_it_answers_through_the_proxy(stack: Stack) -> None:
    status, _ = get_home(stack.proxy, timeout=10)
    assert status == 200


def test_slow_bodies_hang_gunicorn_without_the_proxy(stack: Stack) -> None:
    with slow_bodies(stack.gunicorn), pytest.raises((TimeoutError, urllib.error.URLError)):
        get_home(stack.gunicorn, timeout=2)


def test_slow_bodies_do_not_hang_the_site_behind_the_proxy(stack: Stack) -> None:
    with slow_bodies(stack.proxy):
        status, seconds = get_home(stack.proxy, timeout=5)

    assert status == 200
    assert seconds < 1


class _Drain(http.server.BaseHTTPRequestHandler):
    """An upstream that takes any body whole and says 200: only the proxy can refuse one. It
    records how many bytes of each body reached it."""

    received: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        length, got = int(self.headers.get("Content-Length") or 0), 0
        while got < length:
            data = self.rfile.read(min(length - got, 1 << 20))
            if not data:
                break
            got += len(data)
        self.received.append(got)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def post_body(port: int, size: int) -> bytes:
    """A POST of ``size`` zero bytes; the first bytes of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Content-Length: {size}\r\n\r\n".encode()
        )
        chunk = bytes(1 << 16)
        try:
            for _ in range(size // len(chunk)):
                sock.sendall(chunk)
        except OSError:
            pass  # the proxy may close the connection once it has refused
        return sock.recv(4096)


def test_the_proxy_refuses_a_body_over_its_limit(tmp_path: Path) -> None:
    """The project's Caddyfile with MAX_BODY=1MB in front of an upstream that accepts any body:
    2 MB through the proxy never reaches it whole and the client gets no 200; the same straight
    at the upstream is taken. (Caddy 2.6 answers such a body 502 rather than 413; the site's own
    limit answers 413 as soon as the declared length is too large, ``test_body_limit``.)"""
    caddy = shutil.which("caddy")
    assert caddy, "caddy is missing: run `make install-dev` (Debian package caddy)"
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Drain)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    proxy_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k in ("PATH", "LANG")},
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "SITE_ADDRESS": f"http://127.0.0.1:{proxy_port}",
        "UPSTREAM": f"127.0.0.1:{upstream.server_address[1]}",
        "MAX_BODY": "1MB",
    }
    proxy = [caddy, "run", "--config", "deploy/Caddyfile", "--adapter", "caddyfile"]
    _Drain.received.clear()
    try:
        assert post_body(upstream.server_address[1], 2 << 20).startswith(b"HTTP/1.0 200")
        with running(proxy, env, proxy_port, tmp_path / "caddy.log"):
            assert post_body(proxy_port, 512 << 10).startswith(b"HTTP/1.1 200")
            answer = post_body(proxy_port, 2 << 20)
            time.sleep(0.5)  # the upstream's handler may still be reading what it was sent
    finally:
        upstream.shutdown()

    assert _Drain.received[:2] == [2 << 20, 512 << 10]
    assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert answer.startswith((b"HTTP/1.1 413", b"HTTP/1.1 502")), answer[:200]
    assert all(size <= 1 << 20 for size in _Drain.received[2:]), _Drain.received


def chunked_post(port: int, size: int) -> bytes:
    """A chunked POST of ``size`` bytes to the sign-in page, straight at gunicorn."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        piece = b"a" * 65536
        sent = 0
        try:
            while sent < size:
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sent += len(piece)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # refused mid-body: the answer is already waiting
        return sock.recv(4096)


def test_gunicorn_refuses_a_chunked_body_past_the_limit_while_reading(stack: Stack) -> None:
    # No challenge exists in this database: the limit is the 1 MB margin for form fields.
    assert chunked_post(stack.gunicorn, 4 << 20).startswith(b"HTTP/1.1 413")
    assert not chunked_post(stack.gunicorn, 64 << 10).startswith(b"HTTP/1.1 413")
