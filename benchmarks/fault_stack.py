"""The processes the fault benchmark starts and kills: private Redis and PostgreSQL servers,
Celery workers and gunicorn, all on 127.0.0.1 and free ports, all under one temporary folder.

Private servers, never the machine's shared ones: the benchmark kills and restarts them.
Every process is started in its own session so that its whole group can be killed, and
``Stack.close`` kills whatever is still running and removes the folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing answered on 127.0.0.1:{port} within {timeout:.0f} s")


def kill_group(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, wait: float = 20) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


class Redis:
    """A private ``redis-server`` without persistence: a restart loses every queued message."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True,
        )  # fmt: skip
        wait_port(self.port, 30)

    def kill(self) -> None:
        if self.proc is not None:
            kill_group(self.proc, signal.SIGKILL)


class Postgres:
    """A private PostgreSQL 15 cluster under ``folder``, run as the ``postgres`` user (initdb
    refuses root), trust authentication on 127.0.0.1 only."""

    def __init__(self, folder: Path) -> None:
        self.data = folder / "pgdata"
        self.port = free_port()
        self.started = False

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/bench"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=120
        )

    def init(self) -> None:
        self.data.parent.chmod(0o755)
        self.data.mkdir()
        shutil.chown(self.data, "postgres", "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                          "--auth=trust", "-E", "UTF8")  # fmt: skip
        self.start()
        self._as_postgres(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                          "-U", "postgres", "bench")  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c fsync=off"
            " -c max_connections=200"
        )
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options,
                          "-l", str(self.data / "log"), "-w", "start")  # fmt: skip
        self.started = True

    def stop(self) -> None:
        # fast: every backend is terminated and the server goes down, as in a restart
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.started = False


class Stack:
    """One stack's temporary folder, environment and processes."""

    def __init__(self, name: str, timings: dict[str, str]) -> None:
        self.name = name
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-faults-{name}-"))
        self.procs: list[subprocess.Popen[str]] = []
        self.redis: Redis | None = None
        self.postgres: Postgres | None = None
        self.env = {
            **os.environ,
            "VAR_DIR": str(self.tmp / "var"),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "GRADER_DATA_ROOT": str(self.tmp / "hidden"),
            "MEDIA_ROOT": str(self.tmp / "media"),
            "CELERY_POLLING_INTERVAL": "0.1",
            "PYTHONUNBUFFERED": "1",
            **timings,
        }
        for var in ("DATABASE_URL", "CELERY_BROKER_URL"):
            self.env.pop(var, None)
        if name == "postgres":
            self.redis = Redis(self.tmp)
            self.redis.start()
            self.postgres = Postgres(self.tmp)
            self.postgres.init()
            self.env["DATABASE_URL"] = self.postgres.url
            self.env["CELERY_BROKER_URL"] = self.redis.url

    def worker(self, name: str, concurrency: int = 1, beat: bool = True) -> subprocess.Popen[str]:
        """A worker, with embedded beat unless ``beat`` is false (a site runs beat once);
        returns once it is ready."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", "worker", *(["-B"] if beat else []),
             "--loglevel=INFO",
             f"--concurrency={concurrency}", "--without-mingle", "--without-gossip",
             "--without-heartbeat", f"--hostname={name}@%h",
             f"--schedule={self.env['VAR_DIR']}/beat-{name}"],
            cwd=ROOT, env={**self.env, "CELERY_WORKER_CONCURRENCY": str(concurrency)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        self.procs.append(proc)
        ready = threading.Event()
        log = (self.tmp / f"worker-{name}.log").open("w", buffering=1)

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                if " ready." in line:
                    ready.set()
            log.close()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(180):
            kill_group(proc, signal.SIGKILL)
            raise SystemExit(f"worker {name} did not start")
        return proc

    def gunicorn(self, workers: int = 3) -> tuple[subprocess.Popen[str], int]:
        """gunicorn with the production settings file (sync workers), on a free port."""
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
             "config.wsgi:application"],
            cwd=ROOT, env={**self.env, "GUNICORN_BIND": f"127.0.0.1:{port}",
                           "GUNICORN_WORKERS": str(workers)},
            stdout=(self.tmp / "gunicorn.log").open("w"), stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        self.procs.append(proc)
        wait_port(port, 60)
        return proc, port

    def close(self) -> None:
        for proc in self.procs:
            kill_group(proc)
        if self.redis is not None:
            self.redis.kill()
        if self.postgres is not None and self.postgres.started:
            with contextlib.suppress(subprocess.SubprocessError):
                self.postgres.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
