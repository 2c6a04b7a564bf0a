"""``ProcessRunner``: a fresh Python process per job, for a student's own machine.

It isolates memory and crashes, not a security boundary: a scrubbed environment and rlimits, but
the model sees the host's files and network. Grading hosts use ``grader.sandbox``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence

import numpy as np

from grader import formats
from grader.errors import GradingError, PlatformError
from grader.i18n import gettext_noop
from grader.limits import Limits
from grader.runners import Job, Prediction, Progress, clean_env
from grader.runners.drive import run_protocol


def child_rlimits(limits: Limits) -> Callable[[], None]:
    def apply() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.write_bytes, limits.write_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


class ProcessRunner:
    """A fresh Python process per job.

    The course zip runs the student's own Python code as it loads, so this runner refuses it
    unless ``allow_course_zip`` is set: only a student checking their own zip on their own
    machine should do that. A grading host uses the sandbox, which is why refusing is the
    default even for ``make_runner(sandboxed=False)``.
    """

    name = "process"

    def __init__(self, python: str = sys.executable, *, allow_course_zip: bool = False) -> None:
        self.python = python
        self.allow_course_zip = allow_course_zip

    def command(self) -> Sequence[str]:
        return [self.python, "-m", "grader.child"]

    def predict(
        self, job: Job, inputs: np.ndarray, max_output_bytes: int, progress: Progress | None = None
    ) -> Prediction:
        if job.format == formats.COURSE_ZIP and not self.allow_course_zip:
            raise GradingError(
                "needs_sandbox",
                gettext_noop(
                    "the course's submission zip runs your own Python code while loading, so it"
                    " is only graded inside the sandbox"
                ),
            )
        # The folder holding the ``grader`` package: the child imports it from there.
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        try:
            proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=clean_env({"PYTHONPATH": root, "OMP_NUM_THREADS": str(job.limits.threads)}),
                cwd="/",
                preexec_fn=child_rlimits(job.limits),
            )
        except OSError as exc:
            raise PlatformError(
                "runner_unavailable", "could not start the model process", str(exc)
            ) from exc

        def kill() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        return run_protocol(proc, job, inputs, max_output_bytes, progress, kill)
