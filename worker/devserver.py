"""Run the embedded default in one terminal: web server, Celery worker and beat.

``python -m worker.devserver`` (what ``make demo`` ends with) starts the three processes,
prefixes their output, and stops all of them when one exits or on Ctrl-C. Production runs
them as separate services (docker-compose.yml); this is for a laptop and the demo.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import IO

HOST = os.environ.get("DEMO_HOST", "127.0.0.1")
PORT = os.environ.get("DEMO_PORT", "8000")


def _commands() -> dict[str, list[str]]:
    python = sys.executable
    celery = [python, "-m", "celery", "-A", "worker"]
    return {
        "web": [python, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"],
        "worker": [
            *celery,
            "worker",
            "--loglevel=INFO",
            "--concurrency=1",
            "--without-mingle",
            "--without-gossip",
            "--hostname=demo@%h",
        ],
        "beat": [*celery, "beat", "--loglevel=INFO", "--schedule=var/celerybeat-schedule"],
    }


def _pump(name: str, stream: IO[bytes]) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"{name:>6} | {line.decode(errors='replace')}")
        sys.stdout.flush()


def main() -> int:
    os.makedirs("var", exist_ok=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name, argv in _commands().items():
        procs[name] = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        assert procs[name].stdout is not None
        threading.Thread(target=_pump, args=(name, procs[name].stdout), daemon=True).start()
    print(
        f"\n  Leaderboard running at http://{HOST}:{PORT}/  (Ctrl-C stops web, worker and beat)\n"
        "  Sign in as demo / demo (student) or staff / staff (admin at /admin/).\n"
        "  Demo models to upload: var/demo-models/*.pt2\n",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            if any(p.poll() is not None for p in procs.values()):
                break
    except KeyboardInterrupt:
        pass
    code = 0
    for name, proc in procs.items():
        if proc.poll() is not None and proc.returncode:
            print(f"{name} exited with status {proc.returncode}", file=sys.stderr)
            code = 1
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
