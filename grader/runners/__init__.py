"""Running a model in another process: the interface every runner implements, and the choice of
runner.

``Runner.predict`` takes the model bytes and the test inputs (never labels), runs them in a
separate process through the frame protocol of ``grader.protocol`` and returns the compact
predictions, still unvalidated: the caller validates and scores them. Two runners exist:

* ``grader.sandbox.SandboxRunner``: every grading host; a host that cannot sandbox refuses.
* ``grader.runners.process.ProcessRunner``: a plain child process (a scrubbed environment and
  rlimits, but no isolation from the host's files or network), for a student's own machine.

Both drive their process with ``grader.runners.drive.run_protocol``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import numpy as np

from grader.limits import Limits

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Job:
    """One model to run: its kind's name, format and checked bytes, where and how."""

    kind: str
    format: str
    model: bytes
    device: str = "cpu"
    batch_size: int = 32
    limits: Limits = field(default_factory=Limits)
    #: the kind's parameters from the test set (``TaskKind.params_for``)
    params: dict[str, Any] = field(default_factory=dict)

    def header(self) -> dict[str, object]:
        return {
            "type": "job",
            "kind": self.kind,
            "params": self.params,
            "format": self.format,
            "device": self.device,
            "batch_size": self.batch_size,
            "threads": self.limits.threads,
            "max_params": self.limits.max_params,
        }


@dataclass(frozen=True)
class Prediction:
    predictions: np.ndarray
    params: int
    seconds: float
    #: the model process's stderr, truncated: staff only, it may echo test inputs
    log: str
    #: the fingerprint of the weights the model process read (``grader.fingerprints``; "" if
    #: none, or not a fingerprint): the model process's word, for finding copies only
    weights: str = ""


class Runner(Protocol):
    #: shown in grading records: "process", "sandbox", ...
    name: str

    def predict(
        self, job: Job, inputs: np.ndarray, max_output_bytes: int, progress: Progress | None = None
    ) -> Prediction: ...


class ModelProcess(Protocol):
    """What ``run_protocol`` needs of a started model process (``subprocess.Popen`` has it)."""

    @property
    def stdin(self) -> IO[bytes] | None: ...

    @property
    def stdout(self) -> IO[bytes] | None: ...

    @property
    def stderr(self) -> IO[bytes] | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """An environment built from scratch: nothing of the parent's (secrets) is passed on."""
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "HOME": "/tmp",
    }
    env.update(extra or {})
    return env


def make_runner(
    *, sandboxed: bool = True, own_code: bool = False, uid: int = 65534, gpu: int | None = None
) -> Runner:
    """Return the sandboxed runner, or raise ``PlatformError`` if this host cannot sandbox.

    There is no silent fallback: an unsandboxed runner is only returned when asked for.
    ``own_code`` (a student checking their own files on their own machine) also lets that
    runner execute the course zip's Python code. ``gpu``: the index of the one GPU the
    sandbox's jobs may open (``cuda:N``'s N), None for CPU only.
    """
    if not sandboxed:
        from grader.runners.process import ProcessRunner

        return ProcessRunner(allow_course_zip=own_code)
    from grader.sandbox import SandboxRunner

    # ``gpu``: the GPU the jobs grade on, bound in from the start so the first job starts warm.
    return SandboxRunner.create(uid=uid, gpu=gpu)
