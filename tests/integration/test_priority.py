"""Grading yields the CPU to the web server: a real worker's pool processes, and the sandbox
processes they start, run at ``GRADER_NICE`` below the worker's main process, which keeps
taking messages at normal priority."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.integration.conftest import Worker

pytestmark = [pytest.mark.integration]


def niceness(pid: int) -> int:
    # /proc/<pid>/stat: "pid (comm) state ..."; nice is the 19th field, the 17th after comm.
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


def descendants(pid: int) -> list[int]:
    out, todo = [], children(pid)
    while todo:
        child = todo.pop()
        out.append(child)
        try:
            todo += children(child)
        except FileNotFoundError:
            continue
    return out


def test_pool_processes_and_their_sandboxes_grade_at_lower_priority(
    celery_worker: Worker,
) -> None:
    main = celery_worker.proc.pid
    assert settings.GRADER_NICE > 0
    # The pool processes start their sandboxes as they come up: wait for them to appear.
    deadline = time.monotonic() + 60
    pool: list[int] = []
    while time.monotonic() < deadline:
        pool = children(main)
        if pool and all(children(pid) for pid in pool):
            break
        time.sleep(0.2)
    assert pool, celery_worker.log()
    assert niceness(main) == 0
    below = descendants(main)
    assert any(children(pid) for pid in pool), "no pool process started a sandbox"
    for pid in below:
        try:
            assert niceness(pid) >= settings.GRADER_NICE, (pid, niceness(pid))
        except FileNotFoundError:
            continue
