"""A job may use several threads without bringing back the fork-after-OpenMP deadlock: the warm
zygote stays single-threaded, each forked job raises its own thread count before any op."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from grader import formats
from grader.formats.upload import prepare_upload
from grader.limits import MB, Limits
from grader.runners import Job
from tests.grader import attacks

pytestmark = pytest.mark.sandbox

INPUTS = attacks.random_inputs(5)

THREADED_WORK = """
import torch
report["threads"] = torch.get_num_threads()
started = __import__("time").perf_counter()
a = torch.rand(1500, 1500)
for _ in range(5):
    a = (a @ a).clamp(-1, 1)  # a multi-threaded OpenMP op in the forked job
report["seconds"] = __import__("time").perf_counter() - started
"""


def probe(runner, tmp_path: Path, limits: Limits) -> dict:
    code = "import json, sys\nreport = {}\n" + textwrap.dedent(THREADED_WORK)
    code += "\nprint('PROBE ' + json.dumps(report), file=sys.stderr)\n"
    path = attacks.course_zip(tmp_path / "probe.zip", code, at_load=True)
    fmt, data = prepare_upload(path, allowed_formats=(formats.COURSE_ZIP,), max_bytes=50 * MB)
    log = runner.predict(Job("keypoints", fmt, data, limits=limits), INPUTS, 1 << 20).log
    line = next(line for line in log.splitlines() if line.startswith("PROBE "))
    return json.loads(line.removeprefix("PROBE "))


def test_consecutive_threaded_jobs_never_deadlock(tmp_path):
    runner = attacks.shared_runner()
    started = time.monotonic()
    # The zygote forks one job after another; a deadlock would hit the 30 s wall deadline.
    reports = [probe(runner, tmp_path, Limits(threads=2, wall_seconds=30)) for _ in range(3)]

    assert [r["threads"] for r in reports] == [2, 2, 2]
    assert time.monotonic() - started < 60
    # A single-threaded job after threaded ones still gets its one thread.
    assert probe(runner, tmp_path, Limits(threads=1, wall_seconds=30))["threads"] == 1
